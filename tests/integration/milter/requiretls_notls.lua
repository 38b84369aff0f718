-- SPDX-License-Identifier: MIT
-- miltertest script: REQUIRETLS in MAIL FROM on a session without TLS (no {tls_version}
-- with HELO). RFC 8689 section 4.1: REQUIRETLS is only valid after STARTTLS.
--   miltertest -D socket=inet:PORT@HOST -D tag=TAG -s requiretls_notls.lua
-- Expected: MAIL FROM rejected (the milter's log says 530 5.7.10); miltertest only shows
-- the reply command. A later MAIL FROM without REQUIRETLS on the same session is accepted.

local qid = "MT" .. tag .. "B"

local conn = mt.connect(socket, 40, 0.25)
if conn == nil then
    error("mt.connect(" .. socket .. ") failed")
end

if mt.conninfo(conn, "client.test", "127.0.0.1") ~= nil then
    error("mt.conninfo() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("connect not continued")
end
if mt.helo(conn, "client.test") ~= nil then
    error("mt.helo() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("HELO not continued")
end

mt.macro(conn, SMFIC_MAIL, "i", qid)
if mt.mailfrom(conn, "<rt-" .. tag .. "@client.test>", "REQUIRETLS") ~= nil then
    error("mt.mailfrom() failed")
end
local r = mt.getreply(conn)
if r ~= SMFIR_REPLYCODE and r ~= SMFIR_REJECT then
    error("MAIL FROM with REQUIRETLS without TLS was not rejected")
end

-- The same session, a message without REQUIRETLS: nothing to refuse.
mt.macro(conn, SMFIC_MAIL, "i", qid)
if mt.mailfrom(conn, "<plain-" .. tag .. "@client.test>") ~= nil then
    error("mt.mailfrom() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("MAIL FROM without REQUIRETLS was not accepted")
end
mt.macro(conn, SMFIC_RCPT, "i", qid, "{rcpt_mailer}", "smtp")
if mt.rcptto(conn, "<rt-" .. tag .. "@nopolicy.test>") ~= nil then
    error("mt.rcptto() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("RCPT of a message without REQUIRETLS was not accepted")
end

mt.disconnect(conn)
