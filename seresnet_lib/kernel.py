"""The Jupyter kernel the library runs notebooks in (the series, sweeps; grading has its own, ``sandbox``).

It talks to its kernel over local sockets (IPC), not TCP ports: no port is opened, and
ipykernel has no unencrypted TCP connection to warn about at every start. Windows has no
IPC sockets, so there it uses TCP as Jupyter usually does.
"""

from __future__ import annotations

import os
import tempfile
import uuid

from jupyter_client.manager import KernelManager
from traitlets import default


class LocalKernelManager(KernelManager):
    """A KernelManager whose kernels listen on IPC sockets beside their connection file."""

    @default("transport")
    def _default_transport(self) -> str:
        return "tcp" if os.name == "nt" else "ipc"

    @default("connection_file")
    def _default_connection_file(self) -> str:
        """An absolute path of its own, made before the sockets' address is derived from it.

        Without it, the IPC sockets get the relative address "kernel-ipc", which the kernel and
        this process read from their own working folders (a student's folder, the project's),
        and which two kernels started in one folder (a sweep's jobs) would share.
        """
        return os.path.join(tempfile.gettempdir(), f"kernel-{uuid.uuid4().hex}.json")
