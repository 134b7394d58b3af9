"""Where a checkpoint is: a local directory, a Hugging Face cache folder, or a Hub repo id.

`resolve` turns any of them into a local directory holding config.json and the weights. Repo ids are
fetched with huggingface_hub (the optional `hub` extra), which also finds them in the local cache, so
`local_files_only=True` works offline. Only the files ledref reads are fetched.
"""

import os
import re

from .checks import check_path, inside, read_text, short
from .errors import CheckpointNotFoundError, InputError

FILES = ["config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json",
         "model-*.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
         "vocab.json", "merges.txt"]
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
EMBEDDED = {"ledref/tiny-needle": "tiny-needle"}
"""Short names of the models shipped inside the package (ledref/assets/<folder>, in the Hub layout)."""


def resolve(name_or_path, revision=None, cache_dir=None, local_files_only=False):
    """A local directory with the checkpoint's files.

    - a checkpoint directory (a Hub cache snapshot `.../snapshots/<commit>` is one) is used as it is;
    - a Hub cache repo folder (`models--owner--name`, with refs/ and snapshots/) gives the snapshot of
      `revision` (a branch or tag under refs/, or a commit; default main);
    - a short name of a model shipped with ledref (`EMBEDDED`, e.g. ledref/tiny-needle) is its folder in
      the package;
    - `owner/name` is fetched from the Hub (or found in the cache) with huggingface_hub.

    A name that looks like a path (see looks_like_path) is never sent to the Hub: if it is not a
    directory, the error says so.
    """
    path = check_path("name_or_path", name_or_path, InputError)
    if revision is not None and not isinstance(revision, str):
        raise InputError(f"revision={short(revision)} is a {type(revision).__name__}; expected a str (a branch, tag "
                         f"or commit) or None")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise InputError(f"cache_dir={short(cache_dir)} is a {type(cache_dir).__name__}; expected a path or None")
    if not isinstance(local_files_only, bool):
        raise InputError(f"local_files_only={short(local_files_only)}; expected True or False")
    if path in EMBEDDED and not os.path.isdir(path):
        return embedded(path)
    local = os.path.expanduser(path)
    if os.path.isdir(local):
        if os.path.isdir(os.path.join(local, "snapshots")) and os.path.isdir(os.path.join(local, "refs")):
            return cache_snapshot(local, revision)
        return local
    if looks_like_path(path):
        what = "is a file, not a directory" if os.path.exists(local) else "does not exist"
        raise CheckpointNotFoundError(f"checkpoint directory {path} {what}")
    if REPO_ID.match(path):
        return download(path, revision, cache_dir, local_files_only)
    raise CheckpointNotFoundError(f"{path} is neither a checkpoint directory nor a Hugging Face repo id "
                                  f"(owner/name)")


def looks_like_path(name):
    """True for a name meant as a local path: it starts with ".", "/" or "~" (or the system's separator),
    or it exists on disk. Hub repo ids never do."""
    return name.startswith((".", "/", "~", os.sep)) or os.path.exists(name)


def embedded(name):
    """The folder of a model shipped inside the package, by its short name."""
    folder = os.path.join(ASSETS, EMBEDDED[name])
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise CheckpointNotFoundError(f"the embedded model {name} is missing from this installation ({folder}); "
                                      f"reinstall ledref")
    return folder


def cache_snapshot(repo_folder, revision=None):
    """The snapshot directory of a revision in a Hub cache repo folder. The revision (a branch or tag under
    refs/, which may hold slashes, or a commit) and the commit a ref file names stay inside the folder:
    judged on the names, as for shards (checks.inside)."""
    revision = revision or "main"
    if not inside(revision):
        raise CheckpointNotFoundError(f"revision {short(revision)} is not a branch, tag or commit name (it would "
                                      f"lead out of the cache folder {repo_folder})")
    ref = os.path.join(repo_folder, "refs", revision)
    commit = revision
    if os.path.isfile(ref):
        commit = read_text(ref, CheckpointNotFoundError, "cache ref file").strip()
        if not inside(commit) or "/" in commit:
            raise CheckpointNotFoundError(f"cache ref file {ref} names the commit {short(commit)}; expected a "
                                          f"commit hash (a snapshot folder name)")
    snapshot = os.path.join(repo_folder, "snapshots", commit)
    if not os.path.isdir(snapshot):
        refs = sorted(os.listdir(os.path.join(repo_folder, "refs")))
        raise CheckpointNotFoundError(f"revision {revision!r} is not in the cache folder {repo_folder} "
                                      f"(refs there: {refs})")
    return snapshot


def download(repo_id, revision=None, cache_dir=None, local_files_only=False):
    """Fetch the files ledref needs (or find them in the cache) with huggingface_hub."""
    try:
        import huggingface_hub
    except ImportError:
        raise CheckpointNotFoundError(f"{repo_id} is not a local directory; fetching it from the Hugging Face Hub "
                                      f"needs huggingface_hub: pip install 'ledref[hub]'") from None
    where = f"{repo_id} at revision {revision or 'main'}"
    try:
        path = huggingface_hub.snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                                 local_files_only=local_files_only, allow_patterns=FILES)
    except Exception as e:  # offline and not cached, unknown repo, network error: say which
        raise CheckpointNotFoundError(f"could not get {where}: {type(e).__name__}: {e}".splitlines()[0]) from None
    if not any(name.startswith("model") and name.endswith((".safetensors", ".safetensors.index.json"))
               for name in os.listdir(path)):
        raise CheckpointNotFoundError(
            f"{where} has no safetensors weights (model.safetensors); its weights are probably only in "
            f"pytorch_model.bin. Download the repository and convert it: ledref convert SRC DST")
    return path
