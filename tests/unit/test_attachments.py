"""Downloads name their file in a Content-Disposition that no file name can break out of."""

from urllib.parse import unquote

import pytest

from services.web.attachments import ascii_filename, content_disposition


@pytest.mark.parametrize(
    ("name", "fallback", "encoded"),
    [
        ("esf.pdf", "esf.pdf", "esf.pdf"),
        ("Évaluation été.docx", "_valuation _t_.docx", "%C3%89valuation%20%C3%A9t%C3%A9.docx"),
        ('a"b.pdf', "a_b.pdf", "a%22b.pdf"),
        ("a\\b;c=d.pdf", "a_b_c_d.pdf", "a%5Cb%3Bc%3Dd.pdf"),
        ("../../etc/passwd", "_.._etc_passwd", "..%2F..%2Fetc%2Fpasswd"),
        ("x\r\nSet-Cookie: a=b.txt", "x__Set-Cookie_ a_b.txt", "x%0D%0ASet-Cookie%3A%20a%3Db.txt"),
        ("報告.pdf", "__.pdf", "%E5%A0%B1%E5%91%8A.pdf"),
        ("...", "document", "..."),
    ],
)
def test_the_header_carries_the_exact_name_encoded_and_a_plain_fallback(
    name: str, fallback: str, encoded: str
) -> None:
    header = content_disposition(name)
    assert header == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    assert unquote(encoded) == name
    assert header.isascii() and "\r" not in header and "\n" not in header
    assert header.count('"') == 2  # the fallback's own quotes, nothing else


def test_the_fallback_is_plain_ascii_and_never_empty() -> None:
    assert ascii_filename("") == "document"
    assert ascii_filename(".bashrc") == "bashrc"
    assert all(c.isalnum() or c in " ._()-" for c in ascii_filename("ü/\\\"';:*?<>|\x00.pdf"))
