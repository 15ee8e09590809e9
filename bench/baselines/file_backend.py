#!/usr/bin/env python3
"""Baseline: a Python backend reading one file per handle under a directory
(what an operator writes for Docker/Kubernetes secret files).

Usage: file_backend.py DIR
"""

import os
import sys

from common import serve


def main():
    root = os.path.realpath(sys.argv[1])

    def read(handle):
        path = os.path.realpath(os.path.join(root, handle))
        if not path.startswith(root + os.sep):
            raise PermissionError("outside the secrets directory")
        with open(path, encoding="utf-8") as f:
            return f.read()

    return serve(read)


if __name__ == "__main__":
    sys.exit(main())
