module github.com/signalhub/signalhub/examples

go 1.26

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/signalhub/signalhub v0.0.0
)

require github.com/coder/websocket v1.8.15 // indirect

replace github.com/signalhub/signalhub => ../
