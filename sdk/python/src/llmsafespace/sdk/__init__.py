"""The LLMSafeSpace Python SDK. Its client arrives with the SDK issue; until then use the
HTTP API shown in the README."""
