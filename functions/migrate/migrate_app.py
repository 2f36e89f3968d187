"""The migrate function: applies pending migrations on every deploy (CloudFormation custom resource)."""
