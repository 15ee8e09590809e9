#!/usr/bin/env python3
"""Baseline: a Python backend with boto3, one GetSecretValue per handle
(`<secret-id>[;<key>]`), region, credentials and endpoint from the usual
AWS_* environment: the script operators write today.
"""

import sys

import boto3

from common import pick, serve, split_key


def main():
    client = boto3.client("secretsmanager")

    def read(handle):
        secret_id, key = split_key(handle)
        return pick(client.get_secret_value(SecretId=secret_id)["SecretString"], key)

    return serve(read)


if __name__ == "__main__":
    sys.exit(main())
