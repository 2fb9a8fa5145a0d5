"""The matching service: keeps the volunteer pool and the referral cases, proposes circles of volunteers to
the coordinator with the reasons, follows the coordinator's decisions and tracks the yearly target.

Every input of the matcher is forwarded into one single-partition inbox, because the pool is one allocation
problem: a single writer guarantees that no volunteer is held by two open proposals.
"""
