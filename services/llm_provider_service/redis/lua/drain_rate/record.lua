-- One completion, kept for the window; at most ARGV[4] (the newest) are kept.
redis.call('ZADD', KEYS[1], 'NX', string.format('%d', now), ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[4]) + 1))
redis.call('PEXPIRE', KEYS[1], window)
return 1
