-- One route per CREATE SINK statement, matched in this order; the sink's name is the route's.
-- Keys a route cannot set (Kafka, credentials, errors.*) are shared: statements that set one must agree.
CREATE SINK customers FROM inventory.customers WITH (
  connector = 'kinesis',
  stream = 'customers-cdc',
  aws.region = 'eu-west-1',
  primary_key = 'id',
  kafka.bootstrap.servers = 'kafka:9092'
) FORMAT UPSERT ENCODE JSON;

CREATE SINK clicks FROM clicks WITH (
  connector = 'kinesis',
  stream = 'clickstream',
  aws.region = 'eu-west-1',
  input.format = 'json',
  primary_key = 'user'
) FORMAT PLAIN ENCODE JSON;

CREATE SINK mirror FROM "^events\..*" WITH (
  connector = 'kinesis',
  stream = 'mirror-${topic}',
  aws.region = 'eu-west-1',
  input.format = 'raw',
  type = 'append-only'
);
