"""ops_api: SigV4-authorized SSM run-command and start-association on tagged instances."""
