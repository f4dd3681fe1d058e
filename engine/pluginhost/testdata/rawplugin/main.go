// Command rawplugin is a test plugin that speaks the protocol without the
// SDK, to break it. Its behaviour depends on its file name:
//
//	rawplugin*     actions that send bad events (see run)
//	describe-only* serves Describe only: Run is an unknown RPC
//	v2*            speaks protocol version 2 only
//	bad-describe*  describes an invalid action name
//	othercookie*   expects another handshake cookie (another app's plugin)
package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	actionv1 "github.com/jobengine/jobengine/actions/sdk/proto/v1"
)

func main() {
	name := filepath.Base(os.Args[0])
	hs := plugin.HandshakeConfig{
		ProtocolVersion:  actionv1.ProtocolVersion,
		MagicCookieKey:   actionv1.CookieKey,
		MagicCookieValue: actionv1.CookieValue,
	}
	version := actionv1.ProtocolVersion
	p := &grpcPlugin{srv: &server{}}
	switch {
	case strings.HasPrefix(name, "describe-only"):
		p.describeOnly = true
	case strings.HasPrefix(name, "v2"):
		version = 2
	case strings.HasPrefix(name, "bad-describe"):
		p.srv.badName = true
	case strings.HasPrefix(name, "othercookie"):
		hs.MagicCookieKey, hs.MagicCookieValue = "OTHER_APP_PLUGIN", "other"
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]plugin.PluginSet{version: {actionv1.PluginName: p}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}

type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv          *server
	describeOnly bool
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.describeOnly {
		desc := actionv1.ActionPlugin_ServiceDesc
		desc.Methods = desc.Methods[:1] // Describe
		desc.Streams = nil
		s.RegisterService(&desc, p.srv)
		return nil
	}
	actionv1.RegisterActionPluginServer(s, p.srv)
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

type server struct {
	actionv1.UnimplementedActionPluginServer
	badName bool
}

var actions = []string{"bad-progress", "big-status", "big-message", "garbage", "empty-event", "no-result", "bad-level", "empty-key", "big-fields", "fine"}

func (s *server) Describe(context.Context, *actionv1.DescribeRequest) (*actionv1.DescribeResponse, error) {
	resp := &actionv1.DescribeResponse{PluginVersion: "0.0.1"}
	for _, a := range actions {
		resp.Actions = append(resp.Actions, &actionv1.ActionInfo{Name: a})
	}
	if s.badName {
		resp.Actions = append(resp.Actions, &actionv1.ActionInfo{Name: "Bad Name!"})
	}
	return resp, nil
}

func (s *server) Run(req *actionv1.RunRequest, stream actionv1.ActionPlugin_RunServer) error {
	send := func(ev *actionv1.RunEvent) { _ = stream.Send(ev) }
	switch req.GetAction() {
	case "bad-progress":
		send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Progress{Progress: &actionv1.Progress{Percent: 150}}})
	case "big-status":
		send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Status{Status: &actionv1.Status{Message: strings.Repeat("x", 5000)}}})
	case "big-message":
		send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Log{Log: &actionv1.LogLine{Level: "info", Message: strings.Repeat("y", 2<<20)}}})
	case "garbage":
		// Field 1 holds bytes that are not a Progress message.
		_ = stream.SendMsg(wrapperspb.Bytes([]byte{0xff, 0xff, 0xff, 0xff, 0xff}))
	case "empty-event":
		send(&actionv1.RunEvent{})
	case "no-result":
		send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Progress{Progress: &actionv1.Progress{Percent: 50}}})
		return nil
	case "bad-level":
		send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Log{Log: &actionv1.LogLine{Level: "shout", Message: "hi"}}})
	case "empty-key":
		send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Log{Log: &actionv1.LogLine{Level: "info", Message: "hi", Fields: []*actionv1.Field{{Key: "", Value: "x"}}}}})
	case "big-fields":
		send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Log{Log: &actionv1.LogLine{Level: "info", Message: "hi", Fields: []*actionv1.Field{{Key: "k", Value: strings.Repeat("v", 20000)}}}}})
	}
	// Well-behaved ending, after the bad event (if any).
	send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Result{Result: &actionv1.Result{Message: "fine"}}})
	return nil
}
