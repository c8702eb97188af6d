-- RisingWave's Kinesis sink statement, accepted as it is written (FROM names the Kafka topic).
CREATE SINK s1 FROM mv1 WITH (
 connector = 'kinesis',
 stream = 'kinesis-sink-demo',
 aws.region = 'us-east-1',
 aws.credentials.access_key_id = 'your_access_key',
 aws.credentials.secret_access_key = 'your_secret_key'
)
FORMAT PLAIN ENCODE JSON (
   force_append_only='true'
);
