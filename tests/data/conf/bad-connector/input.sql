CREATE SINK s FROM t WITH (connector = 'kafka', stream = 's', aws.region = 'r', type = 'upsert');
