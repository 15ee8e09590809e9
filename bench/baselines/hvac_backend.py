#!/usr/bin/env python3
"""Baseline: a Python backend with hvac, one KV v2 read per handle
(`secret/<path>;<key>`), token and address from VAULT_TOKEN / VAULT_ADDR:
the script operators write today.
"""

import os
import sys

import hvac

from common import serve, split_key


def main():
    client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])

    def read(handle):
        path, key = split_key(handle)
        mount, _, rest = path.partition("/")
        data = client.secrets.kv.v2.read_secret_version(
            path=rest, mount_point=mount, raise_on_deleted_version=True
        )["data"]["data"]
        return data[key]

    return serve(read)


if __name__ == "__main__":
    sys.exit(main())
