"""Documents built by hand for uploads: small valid ones (the chaos run's file
sources) and the same formats made hostile (the soak's corpus). Nothing here needs
a library beyond the standard one."""

from __future__ import annotations

import io
import random
import zipfile
import zlib

# Words for generated documents and messages.
WORDS_SMALL = ("kettle descaling warranty espresso grinder filter pressure boiler steam milk "
               "temperature portafilter tamping crema roast bean burr calibration pump valve "
               "gasket reservoir drip carafe thermostat heating element cleaning citric acid").split()


def pdf(objects: list[bytes], trailer_extra: bytes = b"") -> bytes:
    """A PDF with the given objects (numbered from 1, object 1 the catalog) and a
    correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, trailer_extra, xref)
    return bytes(out)


def _text_stream(text: str, compress: bool = False) -> bytes:
    safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    content = f"BT /F1 11 Tf 72 720 Td ({safe}) Tj ET".encode("latin-1", "replace")
    if compress:
        content = zlib.compress(content)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream"
    return b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"


def _page_objects(stream: bytes) -> list[bytes]:
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        stream,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


def text_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` (pdf-extract reads it back)."""
    return pdf(_page_objects(_text_stream(text, compress=True)))


def pdf_nested_trailer(depth: int = 100_000) -> bytes:
    """Issue 12: a trailer that nests `[` `depth` deep (lopdf parses recursively)."""
    return pdf(_page_objects(_text_stream("nested")),
               b"/X " + b"[" * depth + b"]" * depth + b" ")


def pdf_nested_dict(depth: int = 50_000) -> bytes:
    """An object that nests `<<` dictionaries `depth` deep."""
    objs = _page_objects(_text_stream("nested dict"))
    objs.append(b"<< /A " * depth + b"1" + b" >>" * depth)
    return pdf(objs)


def pdf_flate_bomb(inflated_mib: int = 1024) -> bytes:
    """A content stream that inflates to `inflated_mib` MiB of spaces (about 1 MiB
    on the wire per GiB: deflate's ratio tops out near 1000:1)."""
    z = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    body = bytearray()
    for _ in range(inflated_mib):
        body += z.compress(chunk)
    body += z.flush()
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body) + bytes(body) + b"\nendstream"
    return pdf(_page_objects(stream))


def docx(document_xml: bytes, deflate: bool = True) -> bytes:
    """A DOCX (zip) whose word/document.xml is `document_xml`."""
    buf = io.BytesIO()
    mode = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", mode) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                   'content-types"><Override PartName="/word/document.xml" ContentType="application/'
                   'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("word/document.xml", document_xml)
    return buf.getvalue()


W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def text_docx(paragraphs: list[str]) -> bytes:
    ps = b"".join(b"<w:p><w:r><w:t>%s</w:t></w:r></w:p>" % p.encode() for p in paragraphs)
    return docx(b'<?xml version="1.0"?><w:document ' + W + b"><w:body>" + ps + b"</w:body></w:document>")


def docx_zip_bomb(inflated_mib: int = 1024) -> bytes:
    """word/document.xml of `inflated_mib` MiB (one long run of text), ~1 MiB zipped
    per GiB. Written through a streaming zip entry so this process never holds it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(b'<?xml version="1.0"?><w:document ' + W + b"><w:body><w:p><w:r><w:t>")
            chunk = b"a" * (1 << 20)
            for _ in range(inflated_mib):
                f.write(chunk)
            f.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return buf.getvalue()


def docx_nested(depth: int = 200_000) -> bytes:
    """document.xml nesting elements `depth` deep."""
    return docx(b'<?xml version="1.0"?><w:document ' + W + b"><w:body>"
                + b"<w:p>" * depth + b"</w:p>" * depth + b"</w:body></w:document>")


def html_nested(depth: int = 200_000, tag: bytes = b"div") -> bytes:
    return (b"<html><body>" + b"<%s>" % tag * depth + b"deep" + b"</%s>" % tag * depth
            + b"</body></html>")


def junk(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def truncated(data: bytes, rng: random.Random) -> bytes:
    """`data` cut at a random offset (the issue's 'every kind of upload truncated')."""
    return data[: rng.randrange(1, max(2, len(data)))]
