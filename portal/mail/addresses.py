"""Email addresses, checked as addresses by email-validator (RFC 5322 and 6531 rules,
IDNA domains), never by a pattern of our own: one mailbox, no display name, no list."""
from email_validator import EmailNotValidError, validate_email


def normalized_address(text):
    """``text`` as one mailbox in its normal form; ValueError with the reason otherwise.

    The domain is not looked up (no network at import or in a form): a well-formed
    address whose domain does not exist fails later, at delivery."""
    if not isinstance(text, str):
        raise ValueError("an email address must be text")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None


def deliverable(text):
    """Whether ``text`` can be handed to a mail server as one recipient."""
    try:
        normalized_address(text)
    except ValueError:
        return False
    return True
