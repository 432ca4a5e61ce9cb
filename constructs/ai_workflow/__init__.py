"""cdktf constructs for event-driven AI workflows on Google Cloud (the library layer).

Importing this package changes nothing in the process: no import hooks, no patched
globals, no Node kernel (jsii starts one itself when a construct module imports cdktf).
Modules that need no jsii (errors, rules, regions, naming, workflow_config, handler_env,
source_bundle) import without it. The constructs:

    topic.EventTopic                 a topic with labels, retention, CMEK, grant_publish
    bucket.HardenedBucket            uniform access, PAP enforced, versioning, lifecycle
    dead_letter.DeadLetterQueue      dead-letter topic + pull subscription + agent grant
    handler_function.HandlerFunction gen2 function, runtime/build identities, grant_invoke
    push_subscription.PushSubscription  OIDC push, retry, dead-lettering
    alerts.WorkflowAlerts            alert policies: dead letters, backlog age, push errors
    workflow.AiWorkflow              all of the above for one workflow

Settings files, stack assembly and synth are the app layer (`ai_workflow_app`); the synth
speed-ups are opt-in (`cdktf_fastsynth`).
"""

from .errors import ConfigError

__all__ = ["ConfigError"]
