//  mail_template_texts.h — the texts of Tally's mails, compiled into the
//  mailer. Included by mail_template.c only. Each HTML body is a whole
//  document: a language, a title, one main region, a heading, body text at
//  16px with contrast above WCAG AA, a button whose text says where it
//  goes, and the same link spelled out for readers without HTML. Styles are
//  inline: mail clients drop <style> blocks and external sheets.
#ifndef MAIL_TEMPLATE_TEXTS_H_INCLUDED
#define MAIL_TEMPLATE_TEXTS_H_INCLUDED

#define S_HTML_OPEN(title) \
    "<!DOCTYPE html>\n" \
    "<html lang=\"en\">\n" \
    "<head>\n" \
    "<meta charset=\"utf-8\">\n" \
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n" \
    "<title>" title "</title>\n" \
    "</head>\n" \
    "<body style=\"margin:0;padding:24px 12px;background-color:#f3f4f6;\">\n" \
    "<main style=\"max-width:560px;margin:0 auto;padding:32px 24px;" \
    "background-color:#ffffff;border-radius:8px;color:#1f2937;" \
    "font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;\">\n" \
    "<h1 style=\"margin:0 0 16px;font-size:22px;line-height:1.3;color:#111827;\">" \
    title "</h1>\n"

#define S_HTML_P(text) \
    "<p style=\"margin:0 0 16px;\">" text "</p>\n"

#define S_HTML_BUTTON(label) \
    "<p style=\"margin:24px 0;\"><a href=\"{{link}}\" style=\"display:inline-block;" \
    "padding:12px 20px;background-color:#1d4ed8;color:#ffffff;font-weight:bold;" \
    "text-decoration:none;border-radius:6px;\">" label "</a></p>\n" \
    "<p style=\"margin:0 0 16px;font-size:14px;color:#4b5563;\">If the button does " \
    "not work, copy this address into your browser:<br>" \
    "<a href=\"{{link}}\" style=\"color:#1d4ed8;word-break:break-all;\">{{link}}</a></p>\n"

#define S_HTML_CODE \
    "<p style=\"margin:0 0 16px;\">Or enter this code: <strong style=\"font-family:" \
    "Consolas,Menlo,monospace;font-size:18px;letter-spacing:2px;\">{{code}}</strong></p>\n"

#define S_HTML_CLOSE(note) \
    "<p style=\"margin:24px 0 0;font-size:14px;color:#4b5563;\">" note "</p>\n" \
    "<p style=\"margin:16px 0 0;font-size:14px;color:#4b5563;\">\xe2\x80\x94 Tally</p>\n" \
    "</main>\n" \
    "</body>\n" \
    "</html>\n"

#define S_TEXT_CLOSE "\n\xe2\x80\x94 Tally\n"

typedef struct {
    const char *name;
    const char *subject;
    const char *text;
    const char *html;
} s_template_t;

static const s_template_t s_templates [] = {
    {
        "verify_email",
        "Verify your email address for Tally",
        "Hello {{username}},\n"
        "\n"
        "Please confirm your email address by opening this link:\n"
        "{{link}}\n"
        "\n"
        "Or enter this code: {{code}}\n"
        "\n"
        "The link and the code are valid for 24 hours. If you did not create a "
        "Tally account, you can ignore this email.\n"
        S_TEXT_CLOSE,
        S_HTML_OPEN ("Verify your email address")
        S_HTML_P ("Hello {{username}},")
        S_HTML_P ("Please confirm your email address to finish setting up your "
                  "Tally account.")
        S_HTML_BUTTON ("Verify my email address")
        S_HTML_CODE
        S_HTML_CLOSE ("The link and the code are valid for 24 hours. If you did "
                      "not create a Tally account, you can ignore this email.")
    },
    {
        "password_reset",
        "Reset your Tally password",
        "Hello {{username}},\n"
        "\n"
        "Someone asked to reset the password of your Tally account. To choose a "
        "new password, open this link:\n"
        "{{link}}\n"
        "\n"
        "Or enter this code: {{code}}\n"
        "\n"
        "The link and the code work once, within 30 minutes. If you did not ask "
        "for this, ignore this email: your password stays as it is.\n"
        S_TEXT_CLOSE,
        S_HTML_OPEN ("Reset your password")
        S_HTML_P ("Hello {{username}},")
        S_HTML_P ("Someone asked to reset the password of your Tally account.")
        S_HTML_BUTTON ("Choose a new password")
        S_HTML_CODE
        S_HTML_CLOSE ("The link and the code work once, within 30 minutes. If you "
                      "did not ask for this, ignore this email: your password "
                      "stays as it is.")
    },
    {
        "email_changed",
        "Your Tally email address was changed",
        "Hello {{username}},\n"
        "\n"
        "The email address of your Tally account was changed to {{new_email}}. "
        "Mail about your account now goes there, not here.\n"
        "\n"
        "If you did not make this change, someone else may be using your "
        "account: contact the people who run this Tally service at once.\n"
        "{{link}}\n"
        S_TEXT_CLOSE,
        S_HTML_OPEN ("Your email address was changed")
        S_HTML_P ("Hello {{username}},")
        S_HTML_P ("The email address of your Tally account was changed to "
                  "<strong>{{new_email}}</strong>. Mail about your account now goes "
                  "there, not here.")
        S_HTML_BUTTON ("Open Tally")
        S_HTML_CLOSE ("If you did not make this change, someone else may be using "
                      "your account: contact the people who run this Tally service "
                      "at once.")
    },
    {
        "event_invite",
        "You are invited to help run {{event_name}}",
        "Hello,\n"
        "\n"
        "You have been invited to join {{event_name}} on Tally as {{role}}.\n"
        "To accept the invitation, open this link:\n"
        "{{link}}\n"
        "\n"
        "If you do not know this event, you can ignore this email.\n"
        S_TEXT_CLOSE,
        S_HTML_OPEN ("You are invited to help run an event")
        S_HTML_P ("Hello,")
        S_HTML_P ("You have been invited to join <strong>{{event_name}}</strong> "
                  "on Tally as <strong>{{role}}</strong>.")
        S_HTML_BUTTON ("Accept the invitation")
        S_HTML_CLOSE ("If you do not know this event, you can ignore this email.")
    },
    {
        "order_confirmation",
        "Your order for {{event_name}}",
        "Hello {{username}},\n"
        "\n"
        "Your order for {{event_name}} is confirmed: {{tickets}} ticket(s), "
        "{{total}}.\n"
        "See it here:\n"
        "{{link}}\n"
        "\n"
        "Keep this email: the organizers know your order by it.\n"
        S_TEXT_CLOSE,
        S_HTML_OPEN ("Your order is confirmed")
        S_HTML_P ("Hello {{username}},")
        S_HTML_P ("Your order for <strong>{{event_name}}</strong> is confirmed: "
                  "{{tickets}} ticket(s), {{total}}.")
        S_HTML_BUTTON ("See my order")
        S_HTML_CLOSE ("Keep this email: the organizers know your order by it.")
    },
    {
        "daily_reminder",
        "A gentle reminder to log your day",
        "Hello {{username}},\n"
        "\n"
        "You have not logged anything in Tally today. A few seconds is enough:\n"
        "{{link}}\n"
        "\n"
        "You can change the time of this reminder, or turn it off, in your "
        "settings.\n"
        S_TEXT_CLOSE,
        S_HTML_OPEN ("A gentle reminder to log your day")
        S_HTML_P ("Hello {{username}},")
        S_HTML_P ("You have not logged anything in Tally today. A few seconds is "
                  "enough.")
        S_HTML_BUTTON ("Log my day")
        S_HTML_CLOSE ("You can change the time of this reminder, or turn it off, "
                      "in your settings.")
    },
    {
        "monthly_report",
        "Your Tally report for {{month}}",
        "Hello {{username}},\n"
        "\n"
        "Your report for {{month}} is ready. Trackers in this report: "
        "{{tracker_count}}.\n"
        "Read it here:\n"
        "{{link}}\n"
        "\n"
        "You receive this report on the first day of each month.\n"
        S_TEXT_CLOSE,
        S_HTML_OPEN ("Your monthly report")
        S_HTML_P ("Hello {{username}},")
        S_HTML_P ("Your report for <strong>{{month}}</strong> is ready. Trackers "
                  "in this report: <strong>{{tracker_count}}</strong>.")
        S_HTML_BUTTON ("Read my report")
        S_HTML_CLOSE ("You receive this report on the first day of each month.")
    },
    {
        "mood_board",
        "Your {{year}} in moods",
        "Hello {{username}},\n"
        "\n"
        "The year is over: your mood board for {{year}} is ready, one square for "
        "every day you logged.\n"
        "See it here:\n"
        "{{link}}\n"
        S_TEXT_CLOSE,
        S_HTML_OPEN ("Your year in moods")
        S_HTML_P ("Hello {{username}},")
        S_HTML_P ("The year is over: your mood board for <strong>{{year}}</strong> "
                  "is ready, one square for every day you logged.")
        S_HTML_BUTTON ("See my mood board")
        S_HTML_CLOSE ("Thank you for a year of check-ins.")
    },
};

#endif
