package command

// The notification commands through the API: the same arguments, checks
// and output as their ZooKeeper forms (they share the flag reading and
// the printing). A test notification is sent by the controller, not by
// this host; a secret read from a file goes in the request's body, never
// on a command line.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/api"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
)

func init() {
	apiActions["notification create"] = apiNotificationCreate
	apiActions["notification list"] = apiNotificationList
	apiActions["notification show"] = apiNotificationShow
	apiActions["notification test"] = apiNotificationTest
	apiActions["notification attach"] = apiNotificationAttach(true)
	apiActions["notification detach"] = apiNotificationAttach(false)
	apiActions["notification retry"] = apiNotificationRetry
}

// apiNotifyFail turns a 400 of the API into a usage error (exit 2), as
// the ZooKeeper forms treat the store's notify.ErrInvalid.
func apiNotifyFail(err error) error {
	var se *apiStatusError
	if errors.As(err, &se) && se.code == http.StatusBadRequest {
		return &UsageError{Err: err}
	}
	return err
}

// apiNotificationInput is the body of POST /notification-templates: the
// template and its secret (write-only).
type apiNotificationInput struct {
	*notify.Template
	Secret string `json:"secret,omitempty"`
}

func apiNotificationCreate(c *cli.Context) error {
	t, secret, err := createFromFlags(c)
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	var made notify.Template
	if err := cl.do(c.Context, http.MethodPost, "/notification-templates", nil, apiNotificationInput{t, string(secret)}, &made); err != nil {
		return apiNotifyFail(err)
	}
	fmt.Fprintf(c.App.Writer, "notification template %s created\n", printable(made.Name))
	return nil
}

func apiNotificationList(c *cli.Context) error {
	cl, err := apiNoArgs(c)
	if err != nil {
		return err
	}
	if c.Bool("failed") || c.Bool("pending") {
		state := "failed"
		if c.Bool("pending") {
			state = "pending"
		}
		recs, err := apiList[*notify.Record](c.Context, cl, "/notifications", url.Values{"state": {state}})
		if err != nil {
			return apiNotifyFail(err)
		}
		return printRecords(c, recs)
	}
	ts, err := apiList[*notify.Template](c.Context, cl, "/notification-templates", nil)
	if err != nil {
		return apiNotifyFail(err)
	}
	atts, err := apiList[notify.Attachment](c.Context, cl, "/notification-attachments", nil)
	if err != nil {
		return apiNotifyFail(err)
	}
	return printNotificationTemplates(c, ts, attachedMap(atts), nil)
}

// apiNotificationArg reads the NAME argument and opens the client.
func apiNotificationArg(c *cli.Context) (string, *apiClient, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return "", nil, err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return "", nil, err
	}
	return args[0], cl, nil
}

func apiNotificationShow(c *cli.Context) error {
	name, cl, err := apiNotificationArg(c)
	if err != nil {
		return err
	}
	path := "/notification-templates/" + url.PathEscape(name)
	var t notify.Template
	if err := cl.do(c.Context, http.MethodGet, path, nil, nil, &t); err != nil {
		return apiNotifyFail(err)
	}
	atts, err := apiList[api.NotificationAttachment](c.Context, cl, path+"/attachments", nil)
	if err != nil {
		return apiNotifyFail(err)
	}
	var attached []string
	for _, a := range atts {
		attached = append(attached, attachedText(a.Kind, a.Target, a.Event))
	}
	sort.Strings(attached)
	return printNotificationTemplate(c, &t, attached)
}

// apiTestResult is the answer of POST /notification-templates/{name}/test.
type apiTestResult struct {
	Delivered bool   `json:"delivered"`
	Error     string `json:"error"`
}

func apiNotificationTest(c *cli.Context) error {
	name, cl, err := apiNotificationArg(c)
	if err != nil {
		return err
	}
	// The controller delivers within the template's timeout, at most
	// notify.MaxTimeout.
	cl.timeout = notify.MaxTimeout + time.Minute
	path := "/notification-templates/" + url.PathEscape(name) + "/test"
	var res apiTestResult
	if err := cl.do(c.Context, http.MethodPost, path, nil, nil, &res); err != nil {
		return apiNotifyFail(err)
	}
	if !res.Delivered {
		if res.Error == "" {
			return fmt.Errorf("%w: POST %s: not delivered, and no error in the answer", errAPI, path)
		}
		return errors.New(res.Error)
	}
	printTested(c, name)
	return nil
}

// apiAttachInput is the body of POST
// /notification-templates/{name}/attachments.
type apiAttachInput struct {
	Kind   notify.AttachKind  `json:"kind"`
	Target string             `json:"target"`
	Events []jobs.NotifyEvent `json:"events"`
}

// apiNotificationAttach is the API form of notification attach (or
// detach): every event in one request, written at once.
func apiNotificationAttach(attach bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		name, kind, target, events, err := attachFromFlags(c, attach)
		if err != nil {
			return err
		}
		cl, err := openAPI(c, true)
		if err != nil {
			return err
		}
		path := "/notification-templates/" + url.PathEscape(name) + "/attachments"
		if attach {
			err = cl.do(c.Context, http.MethodPost, path, nil, apiAttachInput{kind, target, events}, nil)
		} else {
			names := make([]string, len(events))
			for i, ev := range events {
				names[i] = string(ev)
			}
			path += "/" + url.PathEscape(string(kind)) + "/" + url.PathEscape(target)
			err = cl.do(c.Context, http.MethodDelete, path, url.Values{"events": {strings.Join(names, ",")}}, nil, nil)
		}
		if err != nil {
			return apiNotifyFail(err)
		}
		printAttached(c, attach, name, kind, target)
		return nil
	}
}

// apiRetryInput is the body of POST /notifications/retry.
type apiRetryInput struct {
	IDs []string `json:"ids"`
}

func apiNotificationRetry(c *cli.Context) error {
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	var res struct {
		Retried int `json:"retried"`
	}
	if err := cl.do(c.Context, http.MethodPost, "/notifications/retry", nil, apiRetryInput{c.Args().Slice()}, &res); err != nil {
		return apiNotifyFail(err)
	}
	printRetried(c, res.Retried)
	return nil
}
