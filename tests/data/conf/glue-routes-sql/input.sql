-- One route reads Glue-framed Avro through a VPC endpoint, the other Glue-framed JSON.
CREATE SINK orders FROM shop.public.orders WITH (
  connector = 'kinesis', stream = 'orders', aws.region = 'us-east-1', input.format = 'debezium-avro',
  schema.registry.type = 'glue', schema.registry.glue.endpoint = 'https://vpce-1.glue.us-east-1.vpce.amazonaws.com'
) FORMAT UPSERT ENCODE JSON;
CREATE SINK events FROM shop.events WITH (
  connector = 'kinesis', stream = 'events', aws.region = 'us-east-1', input.format = 'json',
  schema.registry.type = 'glue', primary_key = 'id'
) FORMAT UPSERT ENCODE JSON;
