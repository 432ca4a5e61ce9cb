"""The PipelineJobs of a CMEK environment: PIPELINE_KMS_KEY becomes the create request's
`encryptionSpec.kmsKeyName`, over HTTP through the real Functions Framework (one server of
its own, with the key set, against the session's stand-ins)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from handler_envelopes import event_data, make_envelope, next_message_id
from handler_fixtures import FunctionServer, handler_env
from local_standins import StandIns

KEY = "projects/acme-security/locations/europe-west4/keyRings/ai/cryptoKeys/pipelines"


@pytest.fixture(scope="module")
def cmek_server(stand_ins: StandIns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = handler_env(stand_ins.pubsub, stand_ins.vertex, PIPELINE_KMS_KEY=KEY)
    server = FunctionServer(env=env, log_path=tmp_path_factory.mktemp("cmek") / "server.log")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_the_job_is_created_with_the_key(cmek_server: str, stand_ins: StandIns) -> None:
    stand_ins.reset()
    message_id = next_message_id()
    envelope = make_envelope(event_data("model.train", {"epochs": 1}), message_id=message_id)
    response = requests.post(cmek_server, json=envelope, timeout=15)
    assert response.status_code == 200, response.text
    (create,) = stand_ins.vertex.creates()
    assert create.query == {"pipelineJobId": [f"train-model-{message_id}"]}
    assert create.json["encryptionSpec"] == {"kmsKeyName": KEY}
    assert create.json["serviceAccount"] == "pipeline@test-project.iam.gserviceaccount.com"
