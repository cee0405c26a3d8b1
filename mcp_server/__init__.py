"""The remote MCP door: Streamable HTTP at /mcp, OAuth 2.1 with Pryv as its own authorization
server, wallet-signed consent, and tools that run the same pipeline as /v1 (gateway/)."""
