"""Generate a throw-away CA and a server certificate for 127.0.0.1 with ``openssl``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .redis_server import TlsFiles

_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("openssl is not installed: apt-get install openssl")
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    _openssl(
        "req", "-x509", *_EC_KEY, "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
        cwd=folder,
    )  # fmt: skip
    return cert, key


def make_tls_files(folder: Path) -> TlsFiles:
    """A CA and a server certificate it signed for 127.0.0.1 / localhost."""
    ca_cert, ca_key = make_ca(folder, "rac-test-ca")
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.crt"
    ext = folder / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "req", *_EC_KEY, "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(key), "-out", str(csr),
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert),
        cwd=folder,
    )  # fmt: skip
    return TlsFiles(ca_cert=ca_cert, cert=cert, key=key)
