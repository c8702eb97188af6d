-- One route per statement, matched in this order; the keys a route cannot set must agree.
CREATE SINK customers FROM inventory.customers WITH (
  connector = 'kinesis', stream = 'customers-out', aws.region = 'eu-west-1', primary_key = 'id',
  kafka.bootstrap.servers = 'k1:9092'
) FORMAT UPSERT ENCODE JSON;
CREATE SINK mirror FROM "^events\..*" WITH (
  connector = 'kinesis', stream = 'mirror-${topic}', aws.region = 'eu-west-1', input.format = 'raw',
  type = 'append-only'
);
