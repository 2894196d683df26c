"""Copy one object between S3 and a local file (the buildspec's only AWS call).

    python3 s3copy.py s3://bucket/key local-file     # download
    python3 s3copy.py local-file s3://bucket/key     # upload (SSE-KMS)
    python3 s3copy.py file1 file2 … s3://bucket/prefix/   # upload each under the prefix

Honours AWS_ENDPOINT_URL like any boto3 client, so it works unchanged in CodeBuild
and against the local runtime.
"""

import sys

import boto3


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def main(source: str, destination: str, *more: str) -> int:
    """Download or upload, depending on which side is an s3:// URI.

    With more than two arguments, every file but the last argument is uploaded under the
    last, an ``s3://bucket/prefix/`` (one interpreter for all: boto3 takes a while to
    import).
    """
    s3 = boto3.client("s3")
    if more:
        arguments = [source, destination, *more]
        files, prefix = arguments[:-1], arguments[-1]
        if not prefix.startswith("s3://") or not prefix.endswith("/"):
            raise SystemExit(f"s3copy: {prefix} is not an s3://bucket/prefix/ to upload into")
        bucket, key = _split(prefix)
        for path in files:
            name = path.rsplit("/", 1)[-1]
            s3.upload_file(path, bucket, key + name, ExtraArgs={"ServerSideEncryption": "aws:kms"})
        return 0
    if source.startswith("s3://"):
        s3.download_file(*_split(source), destination)
    else:
        bucket, key = _split(destination)
        s3.upload_file(source, bucket, key, ExtraArgs={"ServerSideEncryption": "aws:kms"})
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
