"""English left on a translated page or email: any message id that is a whole sentence."""
import re

from portal.i18n import tools


def english_sentences():
    """Message ids of three words or more without placeholders."""
    for message in tools.read(tools.TEMPLATE):
        text = message.id if isinstance(message.id, str) else message.id[0]
        if text and not tools.placeholders(text) and len(text.split()) >= 3:
            yield text


def english_left(text):
    text = re.sub(r"\s+", " ", text)
    return [sentence for sentence in english_sentences() if sentence in text]
