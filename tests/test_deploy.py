"""The deployment files: the Kubernetes manifests against the API's schemas, offline, and the
image's install steps against the ones the README's quick start runs (`make install`)."""

import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

MANIFESTS = Path("deploy/kubernetes/edgebench.yaml")
KUBERNETES = "1.37.0"  # the newest schemas kubernetes-validate (pinned in the lock) bundles
# Flags that change how pip talks, not what it installs.
QUIET = {"--quiet", "--disable-pip-version-check", "--no-cache-dir"}


def documents() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(MANIFESTS.read_text()) if doc]


@pytest.mark.parametrize("document", documents(), ids=lambda doc: doc["kind"])
def test_every_manifest_is_valid_kubernetes(document):
    kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_a_misspelt_field_is_refused():
    deployment = next(doc for doc in documents() if doc["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagee"):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def pip_installs(text: str) -> list[set[str]]:
    """pip_installs are the arguments of each `pip install` in a recipe, paths reduced to
    what they name (the lock file, the project itself), the quiet flags left out."""
    installs = []
    for command in re.findall(r"pip install ([^&\n\\]+)", text):
        words = set()
        for word in shlex.split(command):
            if word in QUIET:
                continue
            name = Path(word).name if "/" in word else word
            words.add("PROJECT" if name in (".", "edgebench") else name)
        installs.append(words)
    return installs


def test_the_image_installs_as_the_quick_start_does():
    make = Path("Makefile").read_text()
    recipe = make[make.index("$(STAMP): requirements.lock") : make.index("touch $(STAMP)")]
    docker = Path("deploy/kubernetes/Dockerfile").read_text()
    expected = [{"--require-hashes", "-r", "requirements.lock"}, {"--no-deps", "-e", "PROJECT"}]
    assert pip_installs(recipe) == expected
    assert pip_installs(docker) == expected
    assert "make run" in Path("README.md").read_text()  # the quick start that runs `install`
