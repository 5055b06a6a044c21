-- One randomized judgement of one provider's model: counted in both hashes in one atomic
-- step, so a report never reads a judgement without its winner. A new entry is added only
-- while fewer than the cap exist, which keeps the store bounded whatever models appear.
-- KEYS[1]: judgements hash, KEYS[2]: first-position wins hash
-- ARGV[1]: the entry (["provider", "model"] as JSON), ARGV[2]: 1 if the first won else 0,
-- ARGV[3]: the most entries kept. Returns 1 if counted, 0 if refused by the cap.
local judgements, first_wins = KEYS[1], KEYS[2]
local entry, first_won, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('HEXISTS', judgements, entry) == 0 and redis.call('HLEN', judgements) >= cap then
  return 0
end
redis.call('HINCRBY', judgements, entry, 1)
redis.call('HINCRBY', first_wins, entry, first_won)
return 1
