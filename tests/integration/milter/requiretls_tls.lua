-- SPDX-License-Identifier: MIT
-- miltertest script: REQUIRETLS in MAIL FROM on a TLS-protected session ({tls_version}
-- sent with HELO, as Postfix does). Postfix 3.7 answers REQUIRETLS itself, so only a
-- milter client like this one can hand the parameter to strictmx-milter.
--   miltertest -D socket=inet:PORT@HOST -D tag=TAG -s requiretls_tls.lua
-- Expected: MAIL FROM accepted; RCPT to a domain without DANE or MTA-STS rejected (the
-- milter's log says 550 5.7.30: miltertest only shows the reply command); RCPT to a DANE
-- domain accepted; end of message adds the route header "requiretls".

local qid = "MT" .. tag .. "A"

local conn = mt.connect(socket, 40, 0.25)
if conn == nil then
    error("mt.connect(" .. socket .. ") failed")
end

mt.macro(conn, SMFIC_CONNECT, "j", "mta.test", "{daemon_name}", "miltertest")
if mt.conninfo(conn, "client.test", "127.0.0.1") ~= nil then
    error("mt.conninfo() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("connect not continued")
end

mt.macro(conn, SMFIC_HELO, "{tls_version}", "TLSv1.3", "{cipher}", "TLS_AES_256_GCM_SHA384")
if mt.helo(conn, "client.test") ~= nil then
    error("mt.helo() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("HELO not continued")
end

-- MAIL-stage macros after HELO (miltertest clears them otherwise).
mt.macro(conn, SMFIC_MAIL, "i", qid)
if mt.mailfrom(conn, "<rt-" .. tag .. "@client.test>", "REQUIRETLS") ~= nil then
    error("mt.mailfrom() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("MAIL FROM with REQUIRETLS over TLS was not accepted")
end

mt.macro(conn, SMFIC_RCPT, "i", qid, "{rcpt_mailer}", "smtp")
if mt.rcptto(conn, "<rt-" .. tag .. "@nopolicy.test>") ~= nil then
    error("mt.rcptto() failed")
end
local r = mt.getreply(conn)
if r ~= SMFIR_REPLYCODE and r ~= SMFIR_REJECT then
    error("RCPT to nopolicy.test was not rejected")
end

mt.macro(conn, SMFIC_RCPT, "i", qid, "{rcpt_mailer}", "smtp")
if mt.rcptto(conn, "<rt-" .. tag .. "@dane-signed.test>") ~= nil then
    error("mt.rcptto() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("RCPT to dane-signed.test was not accepted")
end

-- A client copy of the route header: removed at the end of the message.
if mt.header(conn, "From", "rt-" .. tag .. "@client.test") ~= nil then
    error("mt.header() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("header not continued")
end
if mt.header(conn, "X-Strictmx-Route", "relaxed") ~= nil then
    error("mt.header() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("header not continued")
end
if mt.eoh(conn) ~= nil then
    error("mt.eoh() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("end of headers not continued")
end
-- No body step: the milter declines body chunks at option negotiation.
if mt.eom(conn) ~= nil then
    error("mt.eom() failed")
end
if mt.getreply(conn) ~= SMFIR_CONTINUE then
    error("end of message not accepted")
end
if not mt.eom_check(conn, MT_HDRADD, "X-Strictmx-Route", "requiretls") then
    error("no X-Strictmx-Route: requiretls added")
end
if not mt.eom_check(conn, MT_HDRCHANGE, "X-Strictmx-Route") then
    error("the client's X-Strictmx-Route was not removed")
end

mt.disconnect(conn)
