"""Validate the Kubernetes manifests of deploy/k8s against their schemas, offline.

    python -m deploy.k8s.validate      # every resource the kustomization lists; exit 1 on an invalid one

Built-in kinds (Deployment, Service, ...) are checked against the Kubernetes JSON schemas that the
``kubernetes-validate`` package bundles, in its strict form (an unknown field is an error, as it is for
``kubectl apply``), for the oldest and the newest Kubernetes version we claim. Strimzi kinds are checked
against the openAPIV3Schema of the CRDs ``strimzi.ensure_crds()`` makes, equally strict, with their
metadata checked as a Kubernetes ObjectMeta. Not checked: the CRDs' CEL rules (``x-kubernetes-validations``)
and anything only the API server knows (admission, quotas).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from deploy.k8s import strimzi

HERE = Path(__file__).resolve().parent
KUBERNETES_VERSIONS = ("1.30", "1.37")
"""The oldest Kubernetes the manifests are written for, and the newest whose schemas we have."""
STRIMZI_GROUP = "kafka.strimzi.io"


@dataclass(frozen=True)
class Resource:
    path: Path
    document: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.document.get('kind')}/{self.document.get('metadata', {}).get('name')}"


def kustomization(root: Path = HERE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((root / "kustomization.yaml").read_text())
    return document


def resources(root: Path = HERE) -> Iterator[Resource]:
    """Every document of every file the kustomization lists, in order."""
    for entry in kustomization(root)["resources"]:
        path = root / entry
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                yield Resource(path, document)


class Validator:
    """Checks one resource at a time; the Strimzi CRDs are made (or read from the cache) once."""

    def __init__(self, kubernetes_versions: tuple[str, ...] = KUBERNETES_VERSIONS) -> None:
        self.kubernetes_versions = kubernetes_versions
        self._crd_schemas: dict[str, dict[str, Any]] | None = None

    def crd_schema(self, kind: str) -> dict[str, Any]:
        if self._crd_schemas is None:
            self._crd_schemas = {k: strimzi.json_schema(crd) for k, crd in strimzi.ensure_crds().items()}
        if kind not in self._crd_schemas:
            raise LookupError(f"no Strimzi CRD for {kind}: add it to strimzi.MODELS")
        return self._crd_schemas[kind]

    def errors(self, document: dict[str, Any]) -> list[str]:
        """What is wrong with the resource (empty when it is valid)."""
        api_version = str(document.get("apiVersion", ""))
        if api_version.split("/")[0] == STRIMZI_GROUP:
            return self._custom_errors(document, api_version)
        return [
            message
            for version in self.kubernetes_versions
            for message in self._core_errors(document, version)
        ]

    def _core_errors(self, document: dict[str, Any], version: str) -> list[str]:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(part) for part in error.path) or "(top)"
            return [f"Kubernetes {version}: {where}: {error.message}"]
        except kubernetes_validate.SchemaNotFoundError as error:
            return [f"Kubernetes {version}: {error.message}"]
        return []

    def _custom_errors(self, document: dict[str, Any], api_version: str) -> list[str]:
        if api_version != f"{STRIMZI_GROUP}/{strimzi.API_VERSION}":
            return [f"{api_version}: Strimzi {strimzi.STRIMZI_VERSION} serves only {strimzi.API_VERSION}"]
        try:
            schema = self.crd_schema(str(document.get("kind")))
        except LookupError as unknown:
            return [str(unknown)]
        validator = jsonschema.Draft202012Validator(schema)
        found = [
            f"{'/'.join(str(part) for part in error.path) or '(top)'}: {error.message}"
            for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
        ]
        # The CRD says only "metadata: object"; the API server holds it to ObjectMeta.
        as_core = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": document.get("metadata", {})}
        return found + self._core_errors(as_core, self.kubernetes_versions[-1])


def main() -> int:
    validator = Validator()
    invalid = 0
    for resource in resources():
        problems = validator.errors(resource.document)
        invalid += bool(problems)
        for problem in problems:
            print(f"{resource.path.relative_to(HERE)}: {resource.name}: {problem}", file=sys.stderr)
    checked = sum(1 for _ in resources())
    print(f"{checked} resources checked, {invalid} invalid")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
