"""The local broker's TLS material: a CA of this home and a certificate for localhost.

Generated with `cryptography` on first use of TLS (RECTRACK_KAFKA_TLS=1). The CA certificate
is public (clients trust it: RECTRACK_KAFKA_CA_FILE, or the `ssl_cafile` of a credentials
file); its key and the broker's keystore are 0600. The broker reads a PKCS#12 keystore whose
password is in its 0600 server.properties only.
"""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from infra.private_files import ensure_password, write_private

CA_YEARS = 10
BROKER_DAYS = 397  # what browsers accept for a server certificate; renewed when near its end
RENEW_WITHIN = datetime.timedelta(days=30)


@dataclass(frozen=True)
class BrokerTls:
    """Where the local broker's TLS files live."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        """The CA certificate clients trust (PEM, public)."""
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """The CA's private key (PEM, 0600): only used to issue the broker's certificate."""
        return self.dir / "ca.key"

    @property
    def keystore(self) -> Path:
        """The broker's key and certificate chain (PKCS#12, 0600)."""
        return self.dir / "broker.p12"

    @property
    def keystore_password_file(self) -> Path:
        """The keystore's password (0600); it also goes into server.properties."""
        return self.dir / "broker.p12.password"

    def ensure(self, now: datetime.datetime | None = None) -> str:
        """Create what is missing, renew a broker certificate near its end; return the
        keystore password."""
        now = now or datetime.datetime.now(datetime.UTC)
        if not (self.ca_cert.exists() and self.ca_key.exists()):
            self._new_ca(now)
        password = ensure_password(self.keystore_password_file)
        expiry = self._broker_expiry(password)
        if expiry is None or expiry - now < RENEW_WITHIN:
            self._new_broker_certificate(now, password)
        return password

    def _new_ca(self, now: datetime.datetime) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rectrack local Kafka CA")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        write_private(
            self.ca_key,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        self.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        # A new CA makes any broker certificate of the old one useless.
        self.keystore.unlink(missing_ok=True)

    def _broker_expiry(self, password: str) -> datetime.datetime | None:
        if not self.keystore.exists():
            return None
        try:
            _key, cert, _chain = pkcs12.load_key_and_certificates(
                self.keystore.read_bytes(), password.encode()
            )
        except ValueError:
            return None  # unreadable with this password: issue a new one
        return None if cert is None else cert.not_valid_after_utc

    def _new_broker_certificate(self, now: datetime.datetime, password: str) -> None:
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise RuntimeError(f"{self.ca_key} is not the EC key rectrack generated")
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=BROKER_DAYS))
            .add_extension(
                # The broker listens on localhost only; clients check the name they dialled.
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    # The broker also connects to itself (inter-broker), as a TLS client.
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        # PBES2 with AES-256 and SHA-256 (not the legacy RC2/3DES) is what Java 17 reads.
        encryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(100_000)
            .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
            .hmac_hash(hashes.SHA256())
            .build(password.encode())
        )
        write_private(
            self.keystore,
            pkcs12.serialize_key_and_certificates(b"broker", key, cert, [ca_cert], encryption),
        )
