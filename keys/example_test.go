package keys_test

import (
	"fmt"

	"github.com/krestianstvo/luminary/keys"
)

func Example() {
	// SEA's P-256 "priv" text (pair P of gun.md §4.8; a test key).
	priv, err := keys.ParsePrivate("X-_g1E2qMEWvgZIbgDv2MYQOqtcPFRsJDg_KcwFHOpA")
	if err != nil {
		panic(err)
	}
	fmt.Println(priv.Public()) // SEA's pub: x.y

	msg := keys.Message("example", []byte("instance-1"), []byte("payload"))
	sig, err := priv.Sign(msg)
	if err != nil {
		panic(err)
	}
	pub, err := keys.ParsePublic(priv.Public().String())
	if err != nil {
		panic(err)
	}
	fmt.Println(pub.Verify(msg, sig))
	fmt.Println(priv) // never the secret
	// Output:
	// 0HyLVvGMpIV2MomZJePJPiqh6Cs9HK1f70ZTq3EifeM.zDkbiw5obwLGuE_Rkt_uUN9CsmfX9L5sz5dzoWbaCX8
	// true
	// private key for 0HyLVvGMpIV2MomZJePJPiqh6Cs9HK1f70ZTq3EifeM.zDkbiw5obwLGuE_Rkt_uUN9CsmfX9L5sz5dzoWbaCX8
}

func ExampleMessage() {
	fmt.Printf("%q\n", keys.Message("tick", []byte("w1"), []byte{7}))
	// Output:
	// "luminary/v1/tick\x00\x00\x00\x00\x02w1\x00\x00\x00\x01\a"
}
