"""A filesystem that loses, on a power cut, whatever was written but not synced: the
fault LazyFS injects for Jepsen, written here against the kernel's FUSE protocol
(``/dev/fuse``) with the standard library alone, since LazyFS itself is not packaged
for this machine.

It passes a backing folder through, as LazyFS does: names (create, rename, unlink,
mkdir) reach the backing folder at once, while file contents and sizes written through
the mount stay in this process's memory until the file is ``fsync``ed (or
``fdatasync``ed), which writes its changed pages and size to the backing file and
syncs it. :meth:`PowerCutFs.power_cut` drops every unsynced change and detaches the
mount: what the backing folder then holds is what a disk would hold after the power
came back, if it kept exactly what was synced and nothing more.

Protocol: ``include/uapi/linux/fuse.h`` (version 7.31 of the messages). One thread
answers the kernel's requests in order; the mount needs root.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

# Opcodes.
LOOKUP, FORGET, GETATTR, SETATTR = 1, 2, 3, 4
MKNOD, MKDIR, UNLINK, RMDIR, RENAME = 8, 9, 10, 11, 12
OPEN, READ, WRITE, STATFS, RELEASE = 14, 15, 16, 17, 18
FSYNC, FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR, FSYNCDIR = 20, 25, 26, 27, 28, 29, 30
ACCESS, CREATE, INTERRUPT, DESTROY, BATCH_FORGET, RENAME2 = 34, 35, 36, 38, 42, 45
NO_REPLY = {FORGET, BATCH_FORGET, INTERRUPT}

FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE = 1, 2, 4, 8
FUSE_BIG_WRITES = 1 << 5
MAX_WRITE = 1 << 17
PAGE = 4096
ROOT = 1
MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2

_IN_HEADER = struct.Struct("<IIQQIIIHH")
_OUT_HEADER = struct.Struct("<IiQ")
_ATTR = struct.Struct("<QQQQQQIIIIIIIIII")


@dataclass
class _Contents:
    """A file's contents as written through the mount, and what is not synced yet."""

    data: bytearray
    dirty_pages: set[int] = field(default_factory=set)
    resized: bool = False

    @property
    def dirty(self) -> bool:
        return bool(self.dirty_pages) or self.resized


class PowerCutFs:
    """``backing`` mounted at ``mountpoint``, keeping unsynced writes in memory."""

    def __init__(self, backing: Path, mountpoint: Path) -> None:
        self.backing = backing
        self.mountpoint = mountpoint
        self._paths: dict[int, str] = {ROOT: ""}
        self._ids: dict[str, int] = {"": ROOT}
        self._contents: dict[str, _Contents] = {}
        self._lock = threading.Lock()
        self._cut = False
        self._fd = -1
        self._thread: threading.Thread | None = None
        self.synced_bytes = 0
        """Bytes written to the backing folder by syncs."""
        self.dropped_bytes = 0
        """Bytes of unsynced pages the power cut dropped."""

    # --- life cycle ----------------------------------------------------------

    def mount(self) -> None:
        """Mount and start answering the kernel; OSError if this machine cannot."""
        self._fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        options = (
            f"fd={self._fd},rootmode=40000,user_id={os.getuid()},group_id={os.getgid()},"
            "default_permissions,allow_other"
        )
        libc = ctypes.CDLL(None, use_errno=True)
        if (
            libc.mount(
                b"powercut",
                os.fsencode(self.mountpoint),
                b"fuse",
                MS_NOSUID | MS_NODEV,
                options.encode(),
            )
            != 0
        ):
            code = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(code, f"mount -t fuse: {os.strerror(code)}", str(self.mountpoint))
        self._thread = threading.Thread(target=self._serve, name="powercut-fs", daemon=True)
        self._thread.start()

    def power_cut(self) -> None:
        """Drop every unsynced change and detach the mount (the processes using it
        should be dead: their later writes reach nothing durable either way)."""
        with self._lock:
            self._cut = True
            for contents in self._contents.values():
                self.dropped_bytes += len(contents.dirty_pages) * PAGE
            self._contents.clear()
        self.unmount()

    def unmount(self) -> None:
        """Detach the mount and stop answering."""
        libc = ctypes.CDLL(None, use_errno=True)
        libc.umount2(os.fsencode(self.mountpoint), MNT_DETACH)
        if self._thread is not None:
            self._thread.join(10)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # --- the request loop ----------------------------------------------------

    def _serve(self) -> None:
        while True:
            try:
                request = os.read(self._fd, MAX_WRITE + PAGE)
            except OSError as exc:
                if exc.errno in {errno.EINTR, errno.EAGAIN, errno.ENOENT}:
                    continue
                return  # ENODEV: unmounted
            length, opcode, unique, nodeid, *_ = _IN_HEADER.unpack_from(request)
            body = memoryview(request)[_IN_HEADER.size : length]
            if opcode == DESTROY:
                self._reply(unique, b"")
                return
            if opcode in NO_REPLY:
                continue
            try:
                with self._lock:
                    answer = self._handle(opcode, nodeid, body)
            except OSError as exc:
                self._error(unique, exc.errno or errno.EIO)
                continue
            self._reply(unique, answer)

    def _reply(self, unique: int, payload: bytes) -> None:
        try:
            os.write(self._fd, _OUT_HEADER.pack(16 + len(payload), 0, unique) + payload)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # the request was interrupted meanwhile
                raise

    def _error(self, unique: int, code: int) -> None:
        try:
            os.write(self._fd, _OUT_HEADER.pack(16, -code, unique))
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise

    def _handle(self, opcode: int, nodeid: int, body: memoryview) -> bytes:
        if opcode == INIT:
            _, _, readahead, _ = struct.unpack_from("<IIII", body)
            return struct.pack(
                "<IIIIHHIIHH8I", 7, 31, readahead, FUSE_BIG_WRITES, 16, 12, MAX_WRITE, 1, 32, 0,
                *[0] * 8,
            )  # fmt: skip
        path = self._paths.get(nodeid)
        if path is None:
            raise OSError(errno.ESTALE, "unknown node")
        if opcode == LOOKUP:
            return self._entry(_join(path, _name(body)))
        if opcode == GETATTR:
            return self._attr_out(path)
        if opcode == SETATTR:
            return self._setattr(path, body)
        if opcode in {OPEN, OPENDIR}:
            return struct.pack("<QII", 0, 0, 0)
        if opcode == READ:
            _, offset, size = struct.unpack_from("<QQI", body)
            return self._read(path, offset, size)
        if opcode == WRITE:
            _, offset, size = struct.unpack_from("<QQI", body)
            self._write(path, offset, bytes(body[40 : 40 + size]))
            return struct.pack("<II", size, 0)
        if opcode in {FSYNC, FLUSH, RELEASE, RELEASEDIR, FSYNCDIR, ACCESS}:
            if opcode == FSYNC:
                self._sync(path)
            return b""
        if opcode == CREATE:
            _, mode = struct.unpack_from("<II", body)
            name = _join(path, _name(body[16:]))
            fd = os.open(self._real(name), os.O_CREAT | os.O_WRONLY, mode & 0o7777)
            os.close(fd)
            return self._entry(name) + struct.pack("<QII", 0, 0, 0)
        if opcode == MKNOD:
            mode, _, _, _ = struct.unpack_from("<IIII", body)
            name = _join(path, _name(body[16:]))
            if not stat.S_ISREG(mode):
                raise OSError(errno.EPERM, "only regular files")
            os.close(os.open(self._real(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode & 0o7777))
            return self._entry(name)
        if opcode == MKDIR:
            mode, _ = struct.unpack_from("<II", body)
            name = _join(path, _name(body[8:]))
            os.mkdir(self._real(name), mode & 0o7777)
            return self._entry(name)
        if opcode in {UNLINK, RMDIR}:
            name = _join(path, _name(body))
            (os.unlink if opcode == UNLINK else os.rmdir)(self._real(name))
            self._contents.pop(name, None)
            self._forget(name)
            return b""
        if opcode in {RENAME, RENAME2}:
            (new_parent,) = struct.unpack_from("<Q", body)
            names = bytes(body[8 if opcode == RENAME else 16 :]).split(b"\0")
            old = _join(path, os.fsdecode(names[0]))
            new = _join(self._paths[new_parent], os.fsdecode(names[1]))
            os.rename(self._real(old), self._real(new))
            self._contents.pop(new, None)
            if old in self._contents:
                self._contents[new] = self._contents.pop(old)
            self._forget(new)
            if old in self._ids:
                node = self._ids.pop(old)
                self._ids[new] = node
                self._paths[node] = new
            return b""
        if opcode == READDIR:
            _, offset, size = struct.unpack_from("<QQI", body)
            return self._readdir(path, offset, size)
        if opcode == STATFS:
            s = os.statvfs(self._real(path))
            return struct.pack(
                "<QQQQQIIII6I", s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, s.f_ffree,
                s.f_bsize, s.f_namemax, s.f_frsize, 0, *[0] * 6,
            )  # fmt: skip
        raise OSError(errno.ENOSYS, "not implemented")

    # --- names and attributes --------------------------------------------------

    def _real(self, path: str) -> str:
        return str(self.backing / path) if path else str(self.backing)

    def _node(self, path: str) -> int:
        node = self._ids.get(path)
        if node is None:
            node = max(self._paths) + 1
            self._ids[path] = node
            self._paths[node] = path
        return node

    def _forget(self, path: str) -> None:
        node = self._ids.pop(path, None)
        if node is not None:
            del self._paths[node]

    def _attr(self, path: str) -> bytes:
        st = os.lstat(self._real(path))
        contents = self._contents.get(path)
        size = st.st_size if contents is None else len(contents.data)
        return _ATTR.pack(
            self._node(path), size, (size + 511) // 512,
            int(st.st_atime), int(st.st_mtime), int(st.st_ctime), 0, 0, 0,
            st.st_mode, st.st_nlink, st.st_uid, st.st_gid, 0, PAGE, 0,
        )  # fmt: skip

    def _entry(self, path: str) -> bytes:
        attr = self._attr(path)  # ENOENT for a name that does not exist
        # Zero timeouts: the kernel asks again each time, so sizes are never stale.
        return struct.pack("<QQQQII", self._node(path), 0, 0, 0, 0, 0) + attr

    def _attr_out(self, path: str) -> bytes:
        return struct.pack("<QII", 0, 0, 0) + self._attr(path)

    def _setattr(self, path: str, body: memoryview) -> bytes:
        valid, _, _, size = struct.unpack_from("<IIQQ", body)
        mode, _, uid, gid = struct.unpack_from("<IIII", body, 68)
        if valid & FATTR_SIZE:
            contents = self._load(path)
            if size < len(contents.data):
                del contents.data[size:]
            else:
                contents.data.extend(bytes(size - len(contents.data)))
            contents.resized = True
        if valid & FATTR_MODE:
            os.chmod(self._real(path), stat.S_IMODE(mode))
        if valid & (FATTR_UID | FATTR_GID):
            os.chown(
                self._real(path), uid if valid & FATTR_UID else -1, gid if valid & FATTR_GID else -1
            )
        return self._attr_out(path)

    def _readdir(self, path: str, offset: int, size: int) -> bytes:
        names = [".", "..", *sorted(os.listdir(self._real(path)))]
        out = bytearray()
        for index in range(offset, len(names)):
            name = os.fsencode(names[index])
            entry = struct.pack("<QQII", index + 1000, index + 1, len(name), 0) + name
            entry += bytes(-len(entry) % 8)
            if len(out) + len(entry) > size:
                break
            out += entry
        return bytes(out)

    # --- contents --------------------------------------------------------------

    def _load(self, path: str) -> _Contents:
        contents = self._contents.get(path)
        if contents is None:
            with open(self._real(path), "rb") as handle:
                contents = _Contents(bytearray(handle.read()))
            self._contents[path] = contents
        return contents

    def _read(self, path: str, offset: int, size: int) -> bytes:
        contents = self._contents.get(path)
        if contents is not None:
            return bytes(contents.data[offset : offset + size])
        fd = os.open(self._real(path), os.O_RDONLY)
        try:
            return os.pread(fd, size, offset)
        finally:
            os.close(fd)

    def _write(self, path: str, offset: int, data: bytes) -> None:
        contents = self._load(path)
        end = offset + len(data)
        if end > len(contents.data):
            contents.data.extend(bytes(end - len(contents.data)))
            contents.resized = True
        contents.data[offset:end] = data
        contents.dirty_pages.update(range(offset // PAGE, (end - 1) // PAGE + 1))

    def _sync(self, path: str) -> None:
        """Write ``path``'s unsynced pages and size to the backing file and sync it."""
        contents = self._contents.get(path)
        if contents is None or not contents.dirty or self._cut:
            return
        fd = os.open(self._real(path), os.O_WRONLY)
        try:
            for page in sorted(contents.dirty_pages):
                chunk = contents.data[page * PAGE : (page + 1) * PAGE]
                if chunk:
                    os.pwrite(fd, chunk, page * PAGE)
                    self.synced_bytes += len(chunk)
            os.ftruncate(fd, len(contents.data))
            os.fsync(fd)
        finally:
            os.close(fd)
        contents.dirty_pages.clear()
        contents.resized = False


def _name(body: memoryview) -> str:
    return os.fsdecode(bytes(body).split(b"\0", 1)[0])


def _join(parent: str, name: str) -> str:
    if "/" in name or name in {".", ".."}:
        raise OSError(errno.EINVAL, "bad name")
    return f"{parent}/{name}" if parent else name
