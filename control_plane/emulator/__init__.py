"""The embedded local environment: the AWS emulator (and, with the release engine, the gateway)."""
