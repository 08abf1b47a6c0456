"""The versioned model registry: immutable version folders, checksums, and an atomic active pointer.

Serving reads only a version's ``serving.npz``: arrays and JSON, loaded without pickle. The joblib files
beside it are pickles, which is code: they are unpickled only on explicit request (``trust=True``, from
``--trust-pickles`` or ML_TRUST_PICKLES=1) or when metadata.json carries a valid HMAC-SHA256 signature made
with a key held outside the model directory (ONCALL_MODEL_KEY, or the file ONCALL_MODEL_KEY_FILE names).

Layout of a model directory::

    models/
      active.json                 {"version": "...", "history": [older active versions], "links": [...], ...}
      incident_classifier.joblib  -> versions/<active id>/incident_classifier.joblib  (and the other
                                  artifacts: links the pointer's moves switch, for people and tools that
                                  open models/<artifact> as the Model Integration Guide does; serving
                                  never reads them)
      versions/<id>/              one immutable training run
        serving.npz                 what serves (engine.scorer.dump_serving)
        incident_classifier.joblib  action_recommender.joblib  text_vectorizer.joblib
        category_classifier.joblib  metadata.json

The guide's flat layout (the joblib files as plain files straight in ``models/``) is seen as version
``flat``; it serves once ``oncall models import`` made a version of it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import pickle
import platform
import secrets
import shutil
import socket
import stat
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy
import scipy
import sklearn

from engine.scorer import load_serving
from engine.settings import EngineSettings

log = logging.getLogger(__name__)

SEVERITY_FILE = "incident_classifier.joblib"
CATEGORY_FILE = "category_classifier.joblib"
ACTIONS_FILE = "action_recommender.joblib"
VECTORIZER_FILE = "text_vectorizer.joblib"
REQUIRED_FILES = (SEVERITY_FILE, ACTIONS_FILE, VECTORIZER_FILE)
ARTIFACT_FILES = (*REQUIRED_FILES, CATEGORY_FILE)  # the pickles, for people and the guide's tools
SERVING_FILE = "serving.npz"
METADATA_FILE = "metadata.json"
TRIAL_FILE = "trial.json"  # a candidate version on trial: {"version", "mode": shadow|canary, "share"}
POINTER_FILE = "active.json"
FLAT_VERSION = "flat"
TRUST_VAR = "ML_TRUST_PICKLES"
KEY_VAR = "ONCALL_MODEL_KEY"
KEY_FILE_VAR = "ONCALL_MODEL_KEY_FILE"
MIN_KEY_BYTES = 16


class RegistryError(Exception):
    """A model directory problem, worded for the person who has to fix it."""


class NoModels(RegistryError):
    """The model directory holds no version and no flat layout."""


class IntegrityError(RegistryError):
    """An artifact does not match its recorded checksum, or cannot be trusted."""


class IncompatibleVersion(RegistryError):
    """The artifacts were written by an incompatible scikit-learn."""


class UnsafePermissions(IntegrityError):
    """Someone other than the owner (or root) could replace a model file."""


class LegacyVersion(RegistryError):
    """A version with no serving artifact (saved before they existed, or the guide's flat layout): its
    models exist only as pickles, which serving never loads."""


class UntrustedPickles(IntegrityError):
    """Pickles asked for without the explicit trust or a valid signature."""


def unsafe_permissions(path: Path) -> str | None:
    """Why ``path`` cannot be trusted to hold code the bot runs, as one sentence with the fix; else None.

    Group-writable counts: anyone in the group could decide what the bot answers (and rewrite
    metadata.json's checksums to match), and the joblib files are programs. Another non-root owner counts
    for the same reason.
    """
    st = path.stat()
    if st.st_mode & 0o022:
        who = "everyone" if st.st_mode & 0o002 else "its group"
        return (
            f"{path} is writable by {who} (mode {stat.S_IMODE(st.st_mode):o}), and whoever writes model "
            f"files decides what the bot answers: refusing to load them; fix it with `chmod go-w {path}`"
        )
    if st.st_uid not in (0, os.geteuid()):
        return (
            f"{path} belongs to user id {st.st_uid}, not to this user ({os.geteuid()}) or root, and whoever "
            f"writes model files decides what the bot answers: refusing to load them; fix it with "
            f"`chown {os.geteuid()} {path}`"
        )
    return None


def trust_from_env() -> bool:
    """ML_TRUST_PICKLES=1: the person running this vouches for the model directory's pickles."""
    return EngineSettings.from_env().trust_pickles


def model_key(root: Path, env: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key (ONCALL_MODEL_KEY, else the file ONCALL_MODEL_KEY_FILE names), or None; from ``env``
    (default os.environ: the bot's configuration checks its own mapping with this function).

    A key file inside the model directory, or one others can read or write, is refused: whoever can write
    models there could then sign their own.
    """
    env = os.environ if env is None else env
    value = env.get(KEY_VAR, "")
    where = KEY_VAR
    if not value and env.get(KEY_FILE_VAR):
        path = Path(env[KEY_FILE_VAR]).resolve()
        where = f"{KEY_FILE_VAR} {path}"
        if path.is_relative_to(root.resolve()):
            raise RegistryError(
                f"{where} is inside the model directory {root}, where whoever writes models could replace "
                "it: keep the key elsewhere"
            )
        try:
            mode = path.stat().st_mode
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{where} cannot be read: {exc}") from exc
        if mode & 0o077:
            raise RegistryError(
                f"{where} can be read or written by others (mode {stat.S_IMODE(mode):o}), and anyone who "
                f"reads it can sign a model: fix it with `chmod 600 {path}`"
            )
    if not value:
        return None
    if len(value.encode()) < MIN_KEY_BYTES:
        raise RegistryError(
            f"the model signing key ({where}) is shorter than {MIN_KEY_BYTES} bytes: make one with "
            "`openssl rand -hex 32`"
        )
    return value.encode()


def signature(metadata: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA256 over the version id and every artifact's sha256: what the signature vouches for.
    Promotions, recorded in the same file later, leave it valid."""
    artifacts = {name: (info or {}).get("sha256") for name, info in (metadata.get("artifacts") or {}).items()}
    content = json.dumps({"version": metadata.get("version"), "artifacts": artifacts}, sort_keys=True)
    return hmac.new(key, content.encode("utf-8"), hashlib.sha256).hexdigest()


def environment_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    """A new file, readable by all and writable by its owner only, on disk before this returns."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Write a temp file, fsync it, rename it over ``path``: readers see the old or the new file, whole."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the pointer from a bot running as another user
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def check_sklearn_version(trained_with: str | None, where: str) -> str | None:
    """Refuse artifacts from another scikit-learn major version; return a warning for a minor mismatch."""
    if not trained_with:
        return f"{where}: no scikit-learn version recorded"
    have = sklearn.__version__.split(".")
    got = trained_with.split(".")
    if got[0] != have[0]:
        raise IncompatibleVersion(
            f"{where} was trained with scikit-learn {trained_with}, this process runs {sklearn.__version__}: "
            "retrain with `oncall train` or install the matching scikit-learn"
        )
    if got[:2] != have[:2]:
        msg = f"{where} was trained with scikit-learn {trained_with}, running {sklearn.__version__}"
        log.warning(msg)
        return msg
    return None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One loadable set of artifacts on disk (a registry version or the flat layout)."""

    id: str
    path: Path
    metadata: dict[str, Any]

    @property
    def trained_at(self) -> str | None:
        return self.metadata.get("trained_at")

    @property
    def is_flat(self) -> bool:
        return self.id == FLAT_VERSION

    @property
    def registry_root(self) -> Path:
        return self.path if self.is_flat else self.path.parent.parent

    def check_permissions(self) -> None:
        """Raise UnsafePermissions unless only the owner (or root) can write the directories and files
        this version is loaded from: the registry root, versions/, its folder, its artifacts, its metadata
        and the active pointer."""
        root = self.registry_root
        dirs = [root] if self.is_flat else [root, self.path.parent, self.path]
        names = (SERVING_FILE, *ARTIFACT_FILES, METADATA_FILE)
        files = [self.path / n for n in names] + [root / POINTER_FILE, root / TRIAL_FILE]
        for path in dirs + [f for f in files if f.is_file()]:
            problem = unsafe_permissions(path)
            if problem:
                raise UnsafePermissions(problem)

    def artifact_path(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def checksums(self) -> dict[str, dict[str, Any]]:
        """metadata.json's record of each artifact (sha256, bytes) by file name."""
        artifacts = self.metadata.get("artifacts") or {}
        if not (isinstance(artifacts, dict) and all(isinstance(a, dict) for a in artifacts.values())):
            raise IntegrityError(
                f"{self.path / METADATA_FILE} does not list its artifacts by file name: not the metadata of "
                "a version"
            )
        return artifacts

    def signed_with(self, key: bytes | None) -> bool:
        """metadata.json carries a valid signature by ``key``, made for this very version."""
        recorded = self.metadata.get("signature")
        if key is None or not isinstance(recorded, str) or self.metadata.get("version") != self.id:
            return False
        try:
            self.checksums()
        except IntegrityError:
            return False
        return hmac.compare_digest(recorded, signature(self.metadata, key))

    def legacy(self) -> str | None:
        """Why this version cannot serve (it has no serving artifact) and how to fix it, in one sentence;
        None when it has one (or its metadata is broken, which reading it reports)."""
        artifacts = self.metadata.get("artifacts") or {}
        if not isinstance(artifacts, dict) or SERVING_FILE in artifacts:
            return None
        if self.is_flat:
            return (
                f"{self.path} holds the guide's flat layout of joblib files, which are pickles (code) the "
                f"bot never loads: if you trust them, make a version of them with `oncall models import "
                f"{self.path} --trust-pickles`"
            )
        return (
            f"model {self.id} was saved before pickle-free serving artifacts existed and the bot never loads "
            f"its joblib files, which are pickles (code): if you trust them, convert it with `oncall models "
            f"convert {self.id} --trust-pickles`, else train a new version with `oncall train`"
        )

    def serving_bytes(self) -> bytes:
        """The serving artifact, after the permission and sha256 checks (the bytes hashed are the bytes
        returned, so a file swapped between the check and the load cannot slip through)."""
        self.check_permissions()
        self.checksums()
        reason = self.legacy()
        if reason:
            raise LegacyVersion(reason)
        return self._verified(SERVING_FILE)

    def _verified(self, name: str) -> bytes:
        path = self.path / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RegistryError(f"model {self.id} in {self.path} is missing {name}") from None
        if hashlib.sha256(data).hexdigest() != self.checksums()[name].get("sha256"):
            raise IntegrityError(
                f"{path} does not match the sha256 recorded in {METADATA_FILE} (tampered, corrupt or foreign "
                "file): refusing to load it"
            )
        return data

    def load_pickles(self, trust: bool = False, key: bytes | None = None) -> tuple[dict[str, Any], list[str]]:
        """Unpickle the joblib files: only with ``trust`` (someone vouched for them) or a valid signature by
        ``key``, and each only if its sha256 matches (an unlisted file only when nothing is listed: the
        guide's flat layout, under ``trust``). Returns (objects by file name, warnings)."""
        if not (trust or self.signed_with(key)):
            whose = f"{self.path}'s" if self.is_flat else f"model {self.id}'s"
            raise UntrustedPickles(
                f"{whose} joblib files are pickles, which run code when loaded: load them only if you trust "
                f"them (`--trust-pickles` or {TRUST_VAR}=1), or sign versions with {KEY_VAR}"
            )
        self.check_permissions()
        warnings: list[str] = []
        warn = check_sklearn_version(
            self.metadata.get("versions", {}).get("scikit-learn"), f"model {self.id}"
        )
        if warn:
            warnings.append(warn)
        missing = [name for name in REQUIRED_FILES if not self.has(name)]
        if missing:
            raise RegistryError(f"model {self.id} in {self.path} is missing {', '.join(missing)}")
        recorded = self.checksums()
        objects: dict[str, Any] = {}
        for name in ARTIFACT_FILES:
            path = self.path / name
            if not path.is_file():
                continue
            if name in recorded:
                data = self._verified(name)
            elif recorded:
                raise IntegrityError(f"{path} is not listed in {METADATA_FILE}: refusing to load it")
            else:
                data = path.read_bytes()
            try:
                objects[name] = load_artifact(data)
            except Exception as exc:  # any unpickling failure means the file is unusable
                raise IntegrityError(f"{path} could not be loaded: {type(exc).__name__}: {exc}") from exc
        return objects, warnings


def dump_artifact(obj: Any) -> bytes:
    """A zlib-compressed protocol-5 pickle: a file ``joblib.load`` reads, that the C unpickler loads fast.

    ``joblib.dump`` output can only be read by joblib's pure-Python unpickler, which takes ~5x longer on
    the vectorizer's vocabularies (tens of thousands of short strings).
    """
    return zlib.compress(pickle.dumps(obj, protocol=5), 3)


def load_artifact(data: bytes) -> Any:
    """Load trusted artifact bytes (``ModelVersion.load_pickles``): ours with the C unpickler, anything else
    (a file joblib.dump wrote) with joblib."""
    try:
        raw = zlib.decompress(data)
    except zlib.error:
        return joblib.load(io.BytesIO(data))
    return pickle.loads(raw)  # only bytes someone vouched for, or that a valid signature covers, reach this


STAGING_ABANDONED_AFTER = 24 * 3600  # seconds: a staging folder of another host this old is a crash's


def _abandoned(staging: Path) -> bool:
    """Left by a crashed save: its process (``.staging-<version>@<host>:<pid>@...``) is gone, or it is
    another host's and a day old. A run saving into the same directory right now keeps its folder."""
    parts = staging.name.split("@")
    host, _, pid = parts[1].rpartition(":") if len(parts) == 3 else ("", "", "")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # alive, as another user
        return False
    try:
        return time.time() - staging.stat().st_mtime > STAGING_ABANDONED_AFTER
    except FileNotFoundError:
        return False


@dataclass(frozen=True, slots=True)
class Check:
    """One line of ``oncall models verify``: a version (or the pointer, or the trial) and its verdict."""

    name: str
    verdict: str  # ok | BAD | leftover (an interrupted save, harmless, removed by the next training run)
    detail: str


def new_version_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class ModelRegistry:
    """Versions under ``<root>/versions``, the active one named by ``<root>/active.json``."""

    def __init__(self, root: str | Path, keep: int = 5) -> None:
        self.root = Path(root)
        self.keep = max(1, keep)
        self.versions_dir = self.root / "versions"
        self.pointer_path = self.root / POINTER_FILE
        self.trial_path = self.root / TRIAL_FILE

    # -- reading ------------------------------------------------------------------------------------------
    def _read_metadata(self, path: Path) -> dict[str, Any]:
        meta = path / METADATA_FILE
        if not meta.is_file():
            return {}
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{meta} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise RegistryError(f"{meta} is not a JSON object")
        return data

    def get(self, version_id: str) -> ModelVersion:
        if version_id == FLAT_VERSION:
            flat = self.flat()
            if flat is None:
                raise RegistryError(f"no flat layout in {self.root}")
            return flat
        path = self.versions_dir / version_id
        if "/" in version_id or version_id.startswith(".") or not path.is_dir():
            raise RegistryError(f"no model version {version_id!r} in {self.versions_dir}")
        return ModelVersion(version_id, path, self._read_metadata(path))

    def list_versions(self) -> list[ModelVersion]:
        """Every complete version, oldest first (ids sort by training time)."""
        if not self.versions_dir.is_dir():
            return []
        found = []
        for path in sorted(self.versions_dir.iterdir()):
            if path.is_dir() and not path.name.startswith("."):
                try:
                    found.append(ModelVersion(path.name, path, self._read_metadata(path)))
                except RegistryError as exc:
                    log.warning("skipping version %s: %s", path.name, exc)
        return found

    def flat(self) -> ModelVersion | None:
        """The seed's layout: the artifacts as plain files in the root. The links to the active version
        are not one, nor plain copies of them (a copy that followed the links): the pointer lists them."""
        linked = set(self.linked())
        for name in REQUIRED_FILES:
            path = self.root / name
            if name in linked or path.is_symlink() or not path.is_file():
                return None
        return ModelVersion(FLAT_VERSION, self.root, self._read_metadata(self.root))

    def linked(self) -> list[str]:
        """The names in the root that are links to the active version's artifacts (the pointer's list)."""
        try:
            return [name for name in self.pointer().get("links", []) if name in ARTIFACT_FILES]
        except RegistryError:
            return []

    def pointer(self) -> dict[str, Any]:
        if not self.pointer_path.is_file():
            return {}
        try:
            data = json.loads(self.pointer_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{self.pointer_path} is unreadable: {exc}") from exc
        return data if isinstance(data, dict) else {}

    def active_id(self) -> str | None:
        version = self.pointer().get("version")
        if version:
            return str(version)
        return FLAT_VERSION if self.flat() is not None else None

    def active(self) -> ModelVersion:
        version = self.active_id()
        if version is None:
            raise NoModels(f"no trained model in {self.root}: run `oncall train`")
        return self.get(version)

    def history(self) -> list[str]:
        return [str(v) for v in self.pointer().get("history", [])]

    # -- writing ------------------------------------------------------------------------------------------
    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """A full disk or a read-only directory becomes one sentence: every write here is staged and renamed,
        so a failed one changes nothing that is read."""
        try:
            yield
        except OSError as exc:
            where = exc.filename or self.root
            raise RegistryError(
                f"cannot {what}: {exc.strerror or exc} ({where}); nothing changed, {self._what_is_active()}"
            ) from exc

    def _what_is_active(self) -> str:
        active = self._active_or_none()
        return "no version is active" if active is None else f"the active version is still {active}"

    def _active_or_none(self) -> str | None:
        try:
            return self.active_id()
        except RegistryError:
            return None

    def check_writable(self) -> None:
        """Fail before a long training run, not after it, when the model directory cannot be written."""
        with self._writing("save model versions"):
            self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass

    def _set_pointer(self, version: str, history: list[str]) -> None:
        before = self.linked()
        links = self._links_for(version, before)
        pointer = {
            "version": version,
            "history": history[-50:],
            "updated_at": datetime.now(UTC).isoformat(),
            "links": links,
        }
        with self._writing(f"make {version} active"):
            self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
            atomic_write_text(self.pointer_path, json.dumps(pointer, indent=2) + "\n")
        self._switch_links(version, links, [name for name in before if name not in links])

    def _links_for(self, version: str, before: Sequence[str]) -> list[str]:
        """The artifact names to link in the root for ``version``: each one it has, unless a plain file of
        that name is there that is not ours (a flat layout's, which may still be rolled back to)."""
        if version == FLAT_VERSION:
            return []
        folder = self.versions_dir / version
        return [
            name
            for name in ARTIFACT_FILES
            if (folder / name).is_file()
            and (name in before or (self.root / name).is_symlink() or not (self.root / name).exists())
        ]

    def _switch_links(self, version: str, links: Sequence[str], stale: Sequence[str]) -> None:
        """Point ``models/<name>`` at the version's artifact, each link made under a temporary name and
        renamed over the old one (a reader opens the old file or the new one, whole). The pointer has
        moved already and serving reads only the pointer: a failure here is logged, not raised."""
        try:
            for name in links:
                temporary = self.root / f".{name}.{secrets.token_hex(4)}"
                try:
                    os.symlink(Path(self.versions_dir.name) / version / name, temporary)
                    os.replace(temporary, self.root / name)
                finally:
                    temporary.unlink(missing_ok=True)
            for name in stale:
                (self.root / name).unlink(missing_ok=True)
            _fsync_dir(self.root)
        except OSError as exc:
            log.warning(
                "%s is active, but the links to it in %s are not all updated: %s", version, self.root, exc
            )

    def write_version(
        self, artifacts: Mapping[str, Any], metadata: dict[str, Any], serving: bytes, key: bytes | None = None
    ) -> ModelVersion:
        """Save a new immutable version: the serving artifact (``engine.scorer.dump_serving``), the objects
        as joblib files beside it, and metadata.json with every sha256, signed with ``key`` when given.
        Staged in a dot folder that readers skip, fsynced, renamed into place; not activated. On any
        failure the staging folder is removed."""
        version_id = str(metadata.get("version") or new_version_id())
        with self._writing(f"save model version {version_id}"):
            self.root.mkdir(mode=0o755, parents=True, exist_ok=True)  # mode: never writable by others
            self.versions_dir.mkdir(mode=0o755, exist_ok=True)
            owner = f"{version_id}@{socket.gethostname()}:{os.getpid()}@"  # see _abandoned
            staging = Path(tempfile.mkdtemp(prefix=f".staging-{owner}", dir=self.versions_dir))
            try:
                recorded = {}
                files = {SERVING_FILE: serving} | {
                    name: dump_artifact(obj) for name, obj in artifacts.items()
                }
                for name, data in files.items():
                    _write_synced(staging / name, data)
                    recorded[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                meta = {**metadata, "version": version_id, "artifacts": recorded}
                meta.setdefault("versions", environment_versions())
                if key is not None:
                    meta["signature"] = signature(meta, key)
                text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
                _write_synced(staging / METADATA_FILE, text.encode("utf-8"))
                os.chmod(staging, 0o755)
                final = self.versions_dir / version_id
                os.rename(staging, final)
                _fsync_dir(self.versions_dir)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return ModelVersion(version_id, final, meta)

    def add_serving(self, version: ModelVersion, serving: bytes, key: bytes | None = None) -> ModelVersion:
        """Give a version saved before serving artifacts its ``serving.npz`` (converted from its pickles by
        someone who trusts them) and record its sha256, signing the metadata with ``key`` when given. The
        models and their predictions stay what they were; the file is renamed into place before
        metadata.json lists it, so a crash in between leaves the version as it was."""
        if version.is_flat:
            raise RegistryError("the flat layout is not a version: `oncall models import` makes one of it")
        recorded = dict(version.checksums())
        recorded[SERVING_FILE] = {"sha256": hashlib.sha256(serving).hexdigest(), "bytes": len(serving)}
        meta = {**version.metadata, "version": version.id, "artifacts": recorded}
        meta["converted_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        meta.pop("signature", None)
        if key is not None:
            meta["signature"] = signature(meta, key)
        temporary = version.path / f".{SERVING_FILE}.{secrets.token_hex(4)}"
        with self._writing(f"convert model version {version.id}"):
            try:
                _write_synced(temporary, serving)
                os.replace(temporary, version.path / SERVING_FILE)
            finally:
                temporary.unlink(missing_ok=True)
            atomic_write_text(version.path / METADATA_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return ModelVersion(version.id, version.path, meta)

    def discard(self, version_id: str) -> None:
        """Delete a version that never went live (its save succeeded but its promotion could not be done)."""
        if version_id in (self._active_or_none(), *self.history()):
            raise RegistryError(f"{version_id} is or was active: not deleting it")
        shutil.rmtree(self.get(version_id).path, ignore_errors=True)

    def promote(self, version_id: str) -> ModelVersion:
        """Make ``version_id`` active; the previously active version goes on the rollback history."""
        version = self.get(version_id)
        current = self.pointer().get("version")
        history = self.history()
        if current and current != version_id:
            history.append(str(current))
        self._set_pointer(version_id, [v for v in history if v != version_id])
        return version

    # -- trials: a candidate that predicts beside the active version -------------------------------------
    def trial(self) -> dict[str, Any] | None:
        """The running trial (every replica reads it, as it reads the active pointer), or None."""
        if not self.trial_path.is_file():
            return None
        try:
            data = json.loads(self.trial_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{self.trial_path} is unreadable: {exc}") from exc
        return data if isinstance(data, dict) and data.get("version") else None

    def start_trial(self, version_id: str, mode: str, share: float = 0.0) -> dict[str, Any]:
        """Shadow: the candidate predicts on every alert, nobody sees it. Canary: it answers ``share`` of
        the alerts (chosen by a stable hash of each alert)."""
        if mode not in ("shadow", "canary"):
            raise RegistryError(f"a trial is shadow or canary, not {mode!r}")
        if mode == "canary" and not 0.0 < share <= 1.0:
            raise RegistryError(f"a canary's share is more than 0 and at most 1, not {share}")
        self.get(version_id)  # it must exist
        if version_id == self.active_id():
            raise RegistryError(f"{version_id} is the active version already")
        trial = {
            "version": version_id,
            "mode": mode,
            "share": share if mode == "canary" else 0.0,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with self._writing(f"start the trial of {version_id}"):
            atomic_write_text(self.trial_path, json.dumps(trial, indent=2) + "\n")
        return trial

    def end_trial(self) -> None:
        with self._writing("end the trial"):
            self.trial_path.unlink(missing_ok=True)

    def record_promotion(self, version_id: str, entry: dict[str, Any]) -> None:
        """Note a promotion (and the gate's verdict, or that it was forced) in the version's metadata.
        Only metadata.json changes: the artifacts and their checksums stay as they were."""
        version = self.get(version_id)
        metadata = {**version.metadata, "promotions": [*version.metadata.get("promotions", []), entry]}
        text = json.dumps(metadata, indent=2, default=str) + "\n"
        with self._writing(f"record the promotion of {version_id}"):
            atomic_write_text(version.path / METADATA_FILE, text)

    def rollback(self) -> ModelVersion:
        """Re-activate the version that was active before the current one."""
        history = [v for v in self.history() if v == FLAT_VERSION or (self.versions_dir / v).is_dir()]
        if not history:
            raise RegistryError("nothing to roll back to: no previously active version is kept")
        target = history.pop()
        self._set_pointer(target, history)
        return self.get(target)

    def prune(self) -> list[str]:
        """Delete all but the newest ``keep`` versions; the active one and its rollback target always stay."""
        versions = [v.id for v in self.list_versions()]
        protected = {self.pointer().get("version"), *self.history()[-1:]}
        keep = set(versions[-self.keep :]) | protected
        removed = []
        for version in versions:
            if version not in keep:
                shutil.rmtree(self.versions_dir / version, ignore_errors=True)
                removed.append(version)
        if removed:
            pointer = self.pointer()
            self._set_pointer(str(pointer["version"]), [v for v in self.history() if v not in removed])
        self.clean_staging()
        return removed

    def clean_staging(self) -> None:
        """Remove the staging folders of saves that crashed (never one still being written)."""
        for staging in self.versions_dir.glob(".staging-*"):
            if _abandoned(staging):
                shutil.rmtree(staging, ignore_errors=True)

    def verify(self, version: ModelVersion, key: bytes | None = None) -> list[str]:
        """Problems with one version's files, none when it has its serving artifact, every listed file
        matches its sha256 and, with ``key``, a signature in its metadata checks out."""
        problems = []
        try:
            recorded = version.checksums()
        except IntegrityError as exc:
            return [str(exc)]
        if not recorded:
            problems.append(f"{version.id}: no checksums recorded")
        legacy = version.legacy()
        if legacy:
            problems.append(legacy)
        for name in REQUIRED_FILES:
            if not version.has(name):
                problems.append(f"{version.id}: {name} missing")
        for name, info in recorded.items():
            path = version.artifact_path(name)
            if not path.is_file():
                problems.append(f"{version.id}: {name} missing")
            elif sha256_file(path) != info.get("sha256"):
                problems.append(f"{version.id}: {name} checksum mismatch")
        if key is not None and "signature" in version.metadata and not version.signed_with(key):
            problems.append(
                f"{version.id}: the signature in {METADATA_FILE} does not match the signing key (its "
                "checksums changed after signing, or another key signed it)"
            )
        return problems

    def check_all(self, key: bytes | None = None) -> list[Check]:
        """Every version, the active pointer and the trial, one verdict each (``oncall models verify``);
        signatures are checked against ``key`` when given. Nothing is unpickled."""
        if not self.root.is_dir():
            return [Check(str(self.root), "BAD", "no such model directory: run `oncall train`")]
        checks: list[Check] = []
        for path in (self.root, self.versions_dir):
            problem = unsafe_permissions(path) if path.is_dir() else None
            if problem:
                checks.append(Check(path.name + "/", "BAD", problem))
        found = sorted(self.versions_dir.iterdir()) if self.versions_dir.is_dir() else []
        flat = self.flat()
        for path in found:
            if path.name.startswith(".staging-") and _abandoned(path):
                checks.append(
                    Check(path.name, "leftover", "an interrupted save; the next `oncall train` removes it")
                )
            elif path.name.startswith(".staging-"):
                checks.append(Check(path.name, "saving", "a version being saved by a running process"))
            elif path.is_dir() and not path.name.startswith("."):
                checks.append(self._check_version(path.name, key))
        if flat is not None:
            checks.append(self._check_version(FLAT_VERSION, key))
        good = {c.name for c in checks if c.verdict == "ok"}
        checks.append(self._check_pointer(good))
        links = self._check_links(good)
        if links is not None:
            checks.append(links)
        trial = self._check_trial(good)
        if trial is not None:
            checks.append(trial)
        return checks

    def _check_version(self, version_id: str, key: bytes | None) -> Check:
        try:
            version = self.get(version_id)
            version.check_permissions()
        except RegistryError as exc:
            return Check(version_id, "BAD", str(exc))
        problems = [p.removeprefix(f"{version_id}: ") for p in self.verify(version, key)]
        if problems:
            return Check(version_id, "BAD", "; ".join(problems))
        try:  # a checksum rewritten to match says nothing about the file: read it (no pickle in that)
            load_serving(version.serving_bytes())
        except Exception as exc:  # whatever a foreign file makes numpy, JSON or the featurizer raise
            return Check(version_id, "BAD", f"{SERVING_FILE} is unusable: {type(exc).__name__}: {exc}")
        size = sum(int(a.get("bytes", 0)) for a in version.metadata["artifacts"].values())
        detail = f"{len(version.metadata['artifacts'])} artifacts, {size / 1e6:.1f} MB, checksums match"
        if "signature" in version.metadata:
            detail += ", signed" if key is not None else ", signed (no key here to check it)"
        trained_with = version.metadata.get("versions", {}).get("scikit-learn")
        if trained_with and trained_with.split(".")[:2] != sklearn.__version__.split(".")[:2]:
            detail += (
                f"; its joblib files are from scikit-learn {trained_with} (running {sklearn.__version__}), "
                "serving does not read them"
            )
        return Check(version_id, "ok", detail)

    def _check_pointer(self, good: set[str]) -> Check:
        try:
            active = self.active_id()
        except RegistryError as exc:
            return Check(POINTER_FILE, "BAD", str(exc))
        if active is None:
            return Check(
                POINTER_FILE, "BAD", "no active version: run `oncall train` or `oncall models promote`"
            )
        if active not in good:
            return Check(POINTER_FILE, "BAD", f"the active version {active} is missing or broken (see above)")
        return Check(POINTER_FILE, "ok", f"active version {active}")

    def _check_links(self, good: set[str]) -> Check | None:
        """``models/<artifact>`` must be the active version's file: what a person opening it loads is what
        serves (compared by checksum, so a copy of the directory that followed the links passes too)."""
        links = self.linked()
        active = self._active_or_none()
        if not links or active not in good:
            return None
        recorded = self.get(active).metadata["artifacts"]
        wrong = [
            name
            for name in links
            if not (self.root / name).is_file()
            or sha256_file(self.root / name) != (recorded.get(name) or {}).get("sha256")
        ]
        if wrong:
            return Check(
                "links",
                "BAD",
                f"{', '.join(wrong)} in {self.root} are not the active version {active}'s: "
                f"`oncall models promote {active}` links them again",
            )
        return Check("links", "ok", f"{', '.join(links)} are the active version {active}'s")

    def _check_trial(self, good: set[str]) -> Check | None:
        try:
            trial = self.trial()
        except RegistryError as exc:
            return Check(TRIAL_FILE, "BAD", str(exc))
        if trial is None:
            return None
        version = str(trial["version"])
        if version not in good:
            return Check(TRIAL_FILE, "BAD", f"the trial's version {version} is missing or broken (see above)")
        if version == self._active_or_none():
            return Check(TRIAL_FILE, "BAD", f"the trial's version {version} is the active one: `end-trial`")
        return Check(TRIAL_FILE, "ok", f"{trial.get('mode')} trial of {version}")
