"""Copy one object between S3 and a local file (the buildspec's only AWS call).

    python3 s3copy.py s3://bucket/key local-file     # download
    python3 s3copy.py local-file s3://bucket/key     # upload (SSE-KMS)

Honours AWS_ENDPOINT_URL like any boto3 client, so it works unchanged in CodeBuild
and against the local runtime.
"""

import sys

import boto3


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def main(source: str, destination: str) -> int:
    """Download or upload, depending on which side is an s3:// URI."""
    s3 = boto3.client("s3")
    if source.startswith("s3://"):
        s3.download_file(*_split(source), destination)
    else:
        bucket, key = _split(destination)
        s3.upload_file(source, bucket, key, ExtraArgs={"ServerSideEncryption": "aws:kms"})
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
