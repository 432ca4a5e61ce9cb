"""The local twin: a synthesized stack (cdktf.out/stacks/<env>/cdk.tf.json) run on this machine
(`make up ENV=dev`, `make down ENV=dev`).

- `stack`: the Terraform JSON and a resolver of its references;
- `emulator`: Google's Pub/Sub emulator (start, stop, REST);
- `logfilter`: log sink filters evaluated as Cloud Logging would;
- `supervisor`: the process that runs the emulator, the functions and the Vertex AI stand-in;
- `state`: the per-environment folder (`.twin/<env>/`) and finding a running twin;
- `client`: driving a running twin from Python (the end-to-end tests use it);
- `cli`: `up`, `down`, `status`, `vertex`.
"""
