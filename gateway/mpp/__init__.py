"""MPP (the Machine Payments Protocol) on the one pipeline: challenges and credentials
(`payment_auth`), Tempo charges (`charge`), Tempo stream channels (`session`) and the paid
flows every door offers (`service`). docs/mpp.md."""
