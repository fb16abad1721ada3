"""``portal translations extract|update|compile``: keep the catalogs in step with the code."""
import click

from portal.i18n import tools


@click.group("translations")
def translations_group():
    """Translation catalogs under translations/."""


@translations_group.command("extract")
def extract_command():
    """Write translations/messages.pot from the sources (see babel.cfg)."""
    catalog = tools.extract()
    tools.write_template(catalog)
    click.echo(f"{len(tools.keys(catalog))} messages in {tools.TEMPLATE.relative_to(tools.PROJECT_ROOT)}")


@translations_group.command("update")
def update_command():
    """Merge messages.pot into every language's catalog (new messages untranslated)."""
    for locale in tools.update():
        click.echo(f"updated {locale}")


@translations_group.command("compile")
@click.option("--force", is_flag=True, help="Compile even catalogs that look current.")
def compile_command(force):
    """Compile every catalog to messages.mo (done by the install and by `portal up`)."""
    compiled = tools.compile_all(force=force)
    click.echo(f"{len(compiled)} catalog(s) compiled")
