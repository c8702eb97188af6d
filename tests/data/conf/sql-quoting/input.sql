CREATE SINK "my sink" FROM "inventory.customers" WITH (
  "connector" = 'kinesis',   -- quoted key
  stream = 'it''s a stream', /* block comment */
  aws.region = 'eu-west-1',
  batch.linger.ms = 5,
  debezium.tombstones = false,
  'kafka.bootstrap.servers' = 'k1:9092,k2:9092',
) FORMAT DEBEZIUM ENCODE JSON
