"""The SDKs this library plugs into, one module each; no other module imports an SDK.

- :mod:`.aiobotocore`: aiobotocore and aioboto3 (``provider.attach(session)``), and the one
  STS client every provider calls through.
"""
