"""The pipeline's pytest plugin lives in the shipcheck package; registering it here makes
`pytest stages/` (and the suite's own tests) use it."""

pytest_plugins = ["shipcheck.plugin", "shipcheck.fixtures", "shipcheck.deploy_fixtures"]
