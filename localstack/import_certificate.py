"""Imports a self-signed certificate into the emulator's ACM and prints its ARN.

An HTTPS listener needs a certificate that exists in ACM, so running stacks/production.yaml on the
emulator goes like:

    eval "$(localstack/emulator.sh env)"
    arn=$(~/.cache/moodlestack/moto-venv/bin/python localstack/import_certificate.py)
    moodlestack plan stacks/production.yaml --set ami.id=ami-785db401 \\
        --set load_balancer.certificate_arn="$arn"

Run it with the emulator's Python (boto3 and cryptography come with moto). Reads
AWS_ENDPOINT_URL and AWS_REGION; the integration tests and the benchmark use it too.
"""

import datetime
import os

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def import_certificate(endpoint_url, region):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "moodle.example.org")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    acm = boto3.client(
        "acm",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    return acm.import_certificate(
        Certificate=cert.public_bytes(serialization.Encoding.PEM),
        PrivateKey=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ),
    )["CertificateArn"]


if __name__ == "__main__":
    print(import_certificate(os.environ["AWS_ENDPOINT_URL"], os.environ.get("AWS_REGION", "eu-west-1")))
