"""An in-memory LDAP directory for the vault backend's LDAP login tests.

Run by tests/src/ldap.rs as `python ldap_server.py DIRECTORY.ldif PORT_FILE`.
Serves the LDIF with ldaptor on 127.0.0.1 (a simple bind checks the entry's
userPassword; searches work, so OpenBao can look up groups). It listens on
a port the kernel picks and then writes that port to PORT_FILE, through a
rename so a reader never sees half of it: no race between choosing a free
port and binding it.
"""

import io
import os
import sys

from ldaptor import interfaces
from ldaptor.inmemory import fromLDIFFile
from ldaptor.protocols.ldap.ldapserver import LDAPServer
from twisted.internet import protocol, reactor
from twisted.python import components


class Factory(protocol.ServerFactory):
    protocol = LDAPServer

    def __init__(self, root):
        self.root = root


# LDAPServer finds the directory by adapting its factory.
components.registerAdapter(lambda f: f.root, Factory, interfaces.IConnectedLDAPEntry)


def serve(root, port_file):
    port = reactor.listenTCP(0, Factory(root), interface="127.0.0.1")
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port.getHost().port))
    os.rename(tmp, port_file)


def fail(failure):
    sys.stderr.write("ldap_server: cannot load the directory: %s\n" % failure.getErrorMessage())
    reactor.stop()


def main():
    ldif, port_file = sys.argv[1], sys.argv[2]
    with open(ldif, "rb") as f:
        # ldaptor's LDIF reader wants a blank line after the last entry.
        text = f.read() + b"\n\n"
    loaded = fromLDIFFile(io.BytesIO(text))
    loaded.addCallback(serve, port_file)
    loaded.addErrback(fail)
    reactor.run()


if __name__ == "__main__":
    main()
