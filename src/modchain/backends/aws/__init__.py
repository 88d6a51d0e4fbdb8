"""Backends that run on AWS: Comprehend, Bedrock Guardrails, Rekognition, S3 and SageMaker endpoints.

One module per service or endpoint contract. boto3/botocore are imported lazily, through :mod:`.common`
(client creation, concurrency, SDK error mapping); :mod:`.responses` checks the shapes of the text services'
answers. The SageMaker modules are clients of the handlers in :mod:`modchain.serving` (or of JumpStart).
"""
