# Queue trigger on PS_JOBS_QUEUE: one job message per invocation.
#
# Returning normally completes the message (the job reached a final state, or it was already
# final and is not run again). Throwing fails the invocation: the host delivers the message
# again, and after maxDequeueCount (host.json) moves it to "<queue>-poison", where the MCP
# handler's function-jobs-poison marks the job dead_lettered with the last recorded error.
param($JobMessage, $TriggerMetadata)

Invoke-Job -Message $JobMessage -DequeueCount ([int]$TriggerMetadata.DequeueCount)
