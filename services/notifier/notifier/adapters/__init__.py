"""The notifier's adapters: ServiceNow Table API, Jira REST, SES."""
