"""Pinned location lists: where a stack may live, and where a KFP template may be stored.

Pinned on 2026-11-25. Update by hand when Google adds a region; config validation rejects
anything not listed here, with a "did you mean" for near misses.

Sources, checked on 2026-11-25 against stored copies of the pages (their own dates are
unknown, so a region launched since may be missing):

- "Cloud Run functions locations" (https://cloud.google.com/functions/docs/locations), the
  2nd gen (Cloud Run functions) tables. The copy read lists Tier 1 and Tier 2 up to
  northamerica-northeast2; southamerica-east1, southamerica-west1, us-west2, us-west3 and
  us-west4 (the end of the Tier 2 table) are from knowledge, not from that copy.
- "Vertex AI locations" (https://cloud.google.com/vertex-ai/docs/general/locations). Its
  per-feature table (the "Vertex AI Pipelines" row) could not be read offline, so the Vertex
  AI side is the region list the Vertex AI SDK itself accepts (google-cloud-aiplatform,
  google/cloud/aiplatform/constants/base.py SUPPORTED_REGIONS) plus us-east5, which the
  locations page lists. Newer Vertex AI regions (me-central1, me-central2, europe-west12,
  africa-south1, ...) are left out until their Pipelines support is confirmed there.
- Google Cloud regions ("Geography and regions",
  https://cloud.google.com/docs/geography-and-regions) for template locations, plus the
  Artifact Registry multi-regions asia, europe and us; from knowledge, confirmed in part
  by that page (Stockholm and Mexico regions). asia-southeast3 (Bangkok) is from knowledge.
"""

from __future__ import annotations

FUNCTIONS_AND_VERTEX_AI_REGIONS: tuple[str, ...] = (
    "asia-east1",
    "asia-east2",
    "asia-northeast1",
    "asia-northeast2",
    "asia-northeast3",
    "asia-south1",
    "asia-southeast1",
    "asia-southeast2",
    "australia-southeast1",
    "australia-southeast2",
    "europe-central2",
    "europe-north1",
    "europe-southwest1",
    "europe-west1",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "europe-west6",
    "europe-west8",
    "europe-west9",
    "me-west1",
    "northamerica-northeast1",
    "northamerica-northeast2",
    "southamerica-east1",
    "southamerica-west1",
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-south1",
    "us-west1",
    "us-west2",
    "us-west3",
    "us-west4",
)
"""Regions with both Cloud Run functions (2nd gen) and Vertex AI (Pipelines): the stack's
`region` (function, buckets, repository and the PipelineJobs all live there)."""

GOOGLE_CLOUD_REGIONS: tuple[str, ...] = tuple(
    sorted(
        {
            *FUNCTIONS_AND_VERTEX_AI_REGIONS,
            "africa-south1",
            "asia-south2",
            "asia-southeast3",
            "europe-north2",
            "europe-west10",
            "europe-west12",
            "me-central1",
            "me-central2",
            "northamerica-south1",
        }
    )
)
"""Every Google Cloud region, whatever it offers."""

ARTIFACT_REGISTRY_LOCATIONS: tuple[str, ...] = ("asia", "europe", "us", *GOOGLE_CLOUD_REGIONS)
"""Where an Artifact Registry KFP repository can be: `https://<location>-kfp.pkg.dev/...`.
A template may live outside the stack's region."""
