"""The gift card credit system's domain package, shared by every Lambda function through the layer."""
