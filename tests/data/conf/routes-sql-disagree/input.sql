CREATE SINK a FROM t WITH (connector = 'kinesis', stream = 's1', aws.region = 'eu-west-1', type = 'upsert',
  kafka.bootstrap.servers = 'k1:9092', aws.credentials.secret_access_key = 'SECRETVALUE');
CREATE SINK b FROM u WITH (connector = 'kinesis', stream = 's2', aws.region = 'us-east-1', type = 'upsert',
  kafka.bootstrap.servers = 'k2:9092', aws.credentials.secret_access_key = 'SECRETVALUE2');
