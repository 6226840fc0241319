"""The execution environment's build context, as `ansible-builder create` generates it.

Building the image needs a container engine (podman or docker), which the test machines lack, so
this checks everything up to that point: the Containerfile, that its galaxy stage installs the
built artifact (run here exactly as the stage runs it), the Python and system requirements the
builder stage will collect from the installed collection (with the context's own introspect
script), and that helm, kustomize and sops are pinned to the versions the tests use.
"""

import os
import subprocess

import localcluster  # tests/cluster, on sys.path through conftest
import yaml

from conftest import REPO, VENV_PYTHON, collection_source_copy
from test_artifact import build_artifact, galaxy_version, run

BIN = os.path.dirname(VENV_PYTHON)


def test_ansible_builder_create_makes_a_context_that_installs_the_artifact_with_its_requirements_and_tested_tools(
        tools, tmp_path):
    source = collection_source_copy(str(tmp_path / "src"))
    artifact = build_artifact(source, source)  # where the documented `ansible-galaxy collection build` puts it
    context = str(tmp_path / "context")
    run([os.path.join(BIN, "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", context,
         "--output-filename", "Containerfile"], cwd=source)

    with open(os.path.join(context, "Containerfile"), encoding="utf-8") as handle:
        containerfile = handle.read()
    assert 'ARG EE_BASE_IMAGE="quay.io/fedora/fedora:42"' in containerfile
    assert "ansible-galaxy collection install" in containerfile and "-r requirements.yml" in containerfile
    assert "introspect.py introspect" in containerfile  # the builder stage collects the collection's requirements
    assert "COPY _build/tools/tool-versions.env" in containerfile and "https://get.helm.sh/helm-${HELM_VERSION}" in containerfile
    assert "kustomize%2F${KUSTOMIZE_VERSION}" in containerfile
    assert "getsops/sops/releases/download/${SOPS_VERSION}/sops-${SOPS_VERSION}.linux.${TARGETARCH}" in containerfile

    # The galaxy stage: `ansible-galaxy collection install -r requirements.yml` in /build (= _build).
    build = os.path.join(context, "_build")
    with open(os.path.join(build, "requirements.yml"), encoding="utf-8") as handle:
        [wanted] = yaml.safe_load(handle)["collections"]
    assert wanted == {"name": "collection/gitops-k8s-%s.tar.gz" % galaxy_version(), "type": "file"}, \
        "execution-environment.yml must name the artifact of galaxy.yml's version"
    with open(os.path.join(build, wanted["name"]), "rb") as copied, open(artifact, "rb") as built:
        assert copied.read() == built.read()
    collections = str(tmp_path / "usr-share-ansible-collections")
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-r", "requirements.yml",
         "--collections-path", collections], cwd=build)
    assert os.path.exists(os.path.join(collections, "ansible_collections", "gitops", "k8s", "MANIFEST.json"))

    # The builder stage: the context's introspect.py over the installed collections.
    pip_out, bindep_out = str(tmp_path / "requirements.txt"), str(tmp_path / "bindep.txt")
    run([VENV_PYTHON, os.path.join(build, "scripts", "introspect.py"), "introspect", collections,
         "--write-pip", pip_out, "--write-bindep", bindep_out])
    with open(pip_out, encoding="utf-8") as handle:
        python = {line.split("#")[0].strip() for line in handle if line.strip()}
    with open(bindep_out, encoding="utf-8") as handle:
        system = {line.split("#")[0].strip() for line in handle if line.strip()}
    # requirements.txt minus PyYAML, which ansible-builder leaves to ansible-core (it depends on it)
    with open(os.path.join(REPO, "requirements.txt"), encoding="utf-8") as handle:
        wanted = {line.split("#")[0].strip() for line in handle if line.split("#")[0].strip()} - {"PyYAML"}
    assert python == wanted, python
    assert {"git [platform:rpm platform:dpkg]", "openssh-clients [platform:rpm]"} <= system, system

    # The tool versions: the EE's are the tested ones.
    with open(os.path.join(build, "tools", "tool-versions.env"), encoding="utf-8") as handle:
        ee_versions = dict(line.strip().split("=", 1) for line in handle if "=" in line and not line.startswith("#"))
    assert ee_versions["HELM_VERSION"] == localcluster.HELM_VERSION
    # `go install` leaves helm's own version string short (v3.22): the build directory names it.
    helm = os.path.realpath(os.path.join(tools, "helm"))
    assert os.path.basename(os.path.dirname(helm)) == "helm-" + ee_versions["HELM_VERSION"], helm
    kustomize = run([os.path.join(tools, "kustomize"), "version"]).stdout.strip()
    assert kustomize == ee_versions["KUSTOMIZE_VERSION"], "the tests run kustomize %s (kubectl's)" % kustomize
    sops = os.path.realpath(os.path.join(tools, "sops"))
    assert os.path.basename(os.path.dirname(sops)) == "sops-" + ee_versions["SOPS_VERSION"], sops
    kwok = subprocess.run([os.path.join(tools, "kwok"), "--version"], capture_output=True, text=True, check=False)
    assert ee_versions["KWOK_VERSION"] in kwok.stdout + kwok.stderr, kwok.stdout + kwok.stderr
