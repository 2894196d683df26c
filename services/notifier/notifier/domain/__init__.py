"""The notifier's domain: what to say on a ticket and how it moves. No HTTP, no boto3."""
